package archive

// IndexSchemaV1 is the index's first migration, the tables as first
// released, for the test that migrates rows made before incarnations.
var IndexSchemaV1 = indexMigrations[:1]
