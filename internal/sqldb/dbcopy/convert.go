package dbcopy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// converter turns a value read from SQLite (nil, int64, float64, string,
// []byte, or what the driver made of a declared type: bool, time.Time) into
// one that COPY writes into its PostgreSQL column.
type converter func(v any) (any, error)

// converterFor picks the conversion into a column of PostgreSQL type
// dataType (information_schema.columns.data_type).
func converterFor(dataType string) (converter, error) {
	switch dataType {
	case "boolean":
		return toBool, nil
	case "bigint", "integer", "smallint":
		return toInt, nil
	case "double precision", "real":
		return toFloat, nil
	case "bytea":
		return toBytes, nil
	case "text", "character varying", "character", "json", "jsonb", "uuid":
		return toText, nil
	case "numeric", "date", "timestamp with time zone", "timestamp without time zone":
		return same, nil // pgx encodes numbers, strings and times into these itself
	}
	return nil, fmt.Errorf("no conversion from SQLite into PostgreSQL's %s", dataType)
}

func same(v any) (any, error) { return v, nil }

// toBool takes SQLite's 0 and 1 (what database/sql writes for a Go bool).
func toBool(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case int64:
		switch x {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	case float64:
		switch x {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s is not a boolean (0 or 1)", describe(v))
}

func toInt(v any) (any, error) {
	switch x := v.(type) {
	case nil, int64:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s is not an integer", describe(v))
}

func toFloat(v any) (any, error) {
	switch x := v.(type) {
	case nil, float64:
		return x, nil
	case int64:
		return float64(x), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%s is not a number", describe(v))
}

func toBytes(v any) (any, error) {
	switch x := v.(type) {
	case nil, []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("%s is not a blob", describe(v))
}

// toText checks what PostgreSQL refuses in text and SQLite stores: a NUL
// byte and bytes that are not UTF-8.
func toText(v any) (any, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	default:
		return nil, fmt.Errorf("%s is not text", describe(v))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("text with a NUL byte, which PostgreSQL cannot store")
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("text that is not valid UTF-8, which PostgreSQL cannot store")
	}
	return s, nil
}

// describe names a value in an error, briefly.
func describe(v any) string {
	s := fmt.Sprintf("%v", v)
	if b, ok := v.([]byte); ok {
		s = fmt.Sprintf("a blob of %d bytes", len(b))
	} else if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%T %s", v, s)
}
