package registry

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-vms/vigil/ingest"
)

// MaxImportRows bounds the cameras of one CSV import.
const MaxImportRows = 10000

// csvColumns maps every accepted header (lower case) to the field it fills.
var csvColumns = map[string]string{
	"id": "id", "name": "name", "department": "department",
	"location.lat": "location.lat", "lat": "location.lat",
	"location.lng": "location.lng", "lng": "location.lng",
	"location.address": "location.address", "address": "location.address",
	"mainurl": "mainUrl", "suburl": "subUrl", "transport": "transport",
	"record": "record", "retentiondays": "retentionDays", "enabled": "enabled", "tags": "tags",
}

// ParseCamerasCSV reads cameras from CSV whose header row names the JSON
// fields of a camera (location.lat/location.lng/location.address or
// lat/lng/address; tags separated by ';'; booleans true/false/1/0, empty
// meaning true for record and enabled). rows[i] is the CSV row of cams[i],
// the header being row 1. It reports every row's errors at once; cameras
// are not validated here beyond their field syntax (see ValidateCamera).
func ParseCamerasCSV(r io.Reader) (cams []ingest.Camera, rows []int, err error) {
	cams, rows, rowErrs, err := ReadCamerasCSV(r)
	if err != nil {
		return nil, nil, err
	}
	if len(rowErrs) > 0 {
		return nil, nil, &ValidationError{Errors: rowErrs}
	}
	return cams, rows, nil
}

// ReadCamerasCSV is ParseCamerasCSV that keeps going after errors in rows:
// err is of a header or of a file with no rows; rowErrs are the rows'
// syntax errors (a value that is no number, a row of the wrong length),
// while cams and rows hold every row that could be read, so that
// ImportCameras(ctx, cams, rows, rowErrs...) reports them together with
// the cameras' other errors in one round. A row with a syntax error keeps
// the field's default value.
func ReadCamerasCSV(r io.Reader) (cams []ingest.Camera, rows []int, rowErrs []FieldError, err error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, nil, &ValidationError{Errors: []FieldError{{Row: 1, Field: "header", Message: "the file is empty"}}}
	}
	if err != nil {
		return nil, nil, nil, &ValidationError{Errors: []FieldError{{Row: 1, Field: "header", Message: csvMessage(err)}}}
	}
	var errs []FieldError
	fields := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.TrimSpace(h)
		f, ok := csvColumns[strings.ToLower(h)]
		switch {
		case !ok:
			errs = append(errs, FieldError{Row: 1, Field: "header", Message: fmt.Sprintf("unknown column %q", truncate(h, 64))})
		case seen[f]:
			errs = append(errs, FieldError{Row: 1, Field: "header", Message: fmt.Sprintf("column %q appears twice", truncate(h, 64))})
		}
		seen[f] = true
		fields[i] = f
	}
	for _, req := range []string{"id", "name", "department", "mainUrl"} {
		if !seen[req] {
			errs = append(errs, FieldError{Row: 1, Field: "header", Message: fmt.Sprintf("column %q is missing", req)})
		}
	}
	if len(errs) > 0 {
		return nil, nil, nil, &ValidationError{Errors: errs}
	}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, FieldError{Row: row, Field: "csv", Message: csvMessage(err)})
			if errors.Is(err, csv.ErrFieldCount) {
				continue
			}
			break // after a quoting error the rest of the file cannot be trusted
		}
		if len(cams) >= MaxImportRows {
			errs = append(errs, FieldError{Row: row, Field: "csv", Message: fmt.Sprintf("more than %d cameras in one import", MaxImportRows)})
			break
		}
		c := ingest.Camera{Record: true, Enabled: true, Tags: []string{}}
		for i, v := range rec {
			if msg := setCSVField(&c, fields[i], v); msg != "" {
				errs = append(errs, FieldError{Row: row, Field: fields[i], Message: msg})
			}
		}
		cams = append(cams, c)
		rows = append(rows, row)
	}
	if len(cams) == 0 && len(errs) == 0 {
		return nil, nil, nil, &ValidationError{Errors: []FieldError{{Row: 2, Field: "csv", Message: "the file has no camera rows"}}}
	}
	return cams, rows, errs, nil
}

func csvMessage(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func setCSVField(c *ingest.Camera, field, v string) string {
	v = strings.TrimSpace(v)
	switch field {
	case "id":
		c.ID = v
	case "name":
		c.Name = v
	case "department":
		c.Department = v
	case "mainUrl":
		c.MainURL = v
	case "subUrl":
		c.SubURL = v
	case "transport":
		c.Transport = strings.ToLower(v)
	case "location.address":
		c.Location.Address = v
	case "location.lat", "location.lng":
		if v == "" {
			return ""
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Sprintf("%q is not a number", truncate(v, 32))
		}
		if field == "location.lat" {
			c.Location.Lat = f
		} else {
			c.Location.Lng = f
		}
	case "retentionDays":
		if v == "" {
			return ""
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Sprintf("%q is not a whole number", truncate(v, 32))
		}
		c.RetentionDays = n
	case "record", "enabled":
		b := true
		switch strings.ToLower(v) {
		case "", "true", "1":
		case "false", "0":
			b = false
		default:
			return fmt.Sprintf("%q is not true, false, 1 or 0", truncate(v, 32))
		}
		if field == "record" {
			c.Record = b
		} else {
			c.Enabled = b
		}
	case "tags":
		c.Tags = []string{}
		for _, t := range strings.Split(v, ";") {
			if t = strings.TrimSpace(t); t != "" {
				c.Tags = append(c.Tags, t)
			}
		}
	}
	return ""
}

// byRow sorts errors by row, keeping the order within a row.
func byRow(errs []FieldError) []FieldError {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Row < errs[j].Row })
	return errs
}
