package registry

import (
	"context"
	"strings"
	"testing"
)

// A value that is no number must not hide the other rows' errors (issue 13).
func TestImportReportsEveryRowInOneRound(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	data := "id,name,department,mainUrl,lat,retentionDays\n" +
		"ok-1,One,police,rtsp://h/1,north,\n" + // a type error
		"ok-2,Two,police,http://h/2,,\n" + // a bad URL
		"ok-3,Three,nowhere,rtsp://h/3,,7\n" + // an unknown department
		"ok-4,Four,police,rtsp://h/4,1,\"x\n" // a quoting error ends the file
	cams, rows, rowErrs, err := ReadCamerasCSV(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := importErrors(t, r.ImportCameras(ctx, cams, rows, rowErrs...))
	if want := "2:location.lat,3:mainUrl,4:department,5:csv"; got != want {
		t.Fatalf("errors %v, want %s", got, want)
	}
	if n := count(t, r, "cameras"); n != 0 {
		t.Fatalf("%d cameras after a failed import", n)
	}
}
