package sqlite

// Migrations is the schema of each migration, in order.
var Migrations = migrations
