package availability

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{"camera", "name", "department", "online %", "recorded %", "observed %", "observed seconds", "note"}

// WriteCSV writes one row per camera: its department, online, recorded and
// observed share of the period. A share that is null in the report (no data,
// or a camera not set to record) is an empty cell, and the note says why.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, c := range r.Cameras {
		note := ""
		switch {
		case c.NoData():
			note = "no data: not observed in the period"
		case !c.Record:
			note = "not set to record"
		}
		cw.Write([]string{cell(c.ID), cell(c.Name), cell(c.Department), number(c.Online), number(c.Recorded),
			strconv.FormatFloat(c.ObservedPercent, 'f', 1, 64), strconv.FormatFloat(c.ObservedS, 'f', 0, 64), note})
	}
	cw.Flush()
	return cw.Error()
}

func number(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

// cell keeps a spreadsheet from reading a text as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
