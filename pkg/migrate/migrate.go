// Package migrate applies the embedded schema migrations with
// golang-migrate. It is the only migration runner: the migrate command,
// tests and compose's one-shot migrate service all go through Up.
package migrate

import (
	"errors"
	"fmt"
	"strings"

	gomigrate "github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/ratestream/ratestream/migrations"
)

// Up applies every pending migration to the database at url (a postgres://
// or postgresql:// URL). It returns the schema version reached.
func Up(url string) (uint, error) {
	m, err := open(url)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, gomigrate.ErrNoChange) {
		return 0, fmt.Errorf("migrate up: %w", err)
	}
	v, _, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Down reverts every migration.
func Down(url string) error {
	m, err := open(url)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Down(); err != nil && !errors.Is(err, gomigrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

func open(url string) (*gomigrate.Migrate, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	m, err := gomigrate.NewWithSourceInstance("iofs", src, driverURL(url))
	if err != nil {
		return nil, fmt.Errorf("open migration target: %w", err)
	}
	return m, nil
}

// driverURL points golang-migrate's pgx/v5 driver at a libpq-style URL.
func driverURL(url string) string {
	for _, p := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(url, p) {
			return "pgx5://" + strings.TrimPrefix(url, p)
		}
	}
	return url
}
