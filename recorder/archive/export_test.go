package archive

// IndexSchemaV1 is the index's first migration, the tables as first
// released (as sqlitedb.Migrate steps), for the test that migrates rows made
// before incarnations.
var IndexSchemaV1 = []string{mustRead("migrations/sqlite/00001_segments.sql")}

// IndexSchemaV2 is the index's tables as sqlitedb.Migrate left them, the
// last version before goose.
var IndexSchemaV2 = append(IndexSchemaV1, mustRead("migrations/sqlite/00002_camera_periods.sql"))

func mustRead(name string) string {
	b, err := migrationFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}
