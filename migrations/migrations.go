// Package migrations embeds the numbered golang-migrate SQL files of the
// ratestream schema. The same files work with the upstream migrate CLI:
//
//	migrate -path migrations -database "$DATABASE_URL" up
package migrations

import "embed"

// FS holds every *.up.sql and *.down.sql file.
//
//go:embed *.sql
var FS embed.FS
