package tally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// WriteScoringSettings stores the scoring settings the scorer of group
// consumer runs with.
func WriteScoringSettings(ctx context.Context, db DB, consumer string, cfg scoring.Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO scoring_settings (consumer, settings) VALUES ($1, $2)
		ON CONFLICT (consumer) DO UPDATE SET settings = excluded.settings, updated_at = now()`, consumer, b); err != nil {
		return fmt.Errorf("store the scoring settings: %w", err)
	}
	return nil
}

// ReadScoringSettings reads the scoring settings the scorer of group
// consumer stored; ok is false when it stored none.
func ReadScoringSettings(ctx context.Context, db DB, consumer string) (cfg scoring.Config, ok bool, err error) {
	var b []byte
	err = db.QueryRow(ctx, `SELECT settings FROM scoring_settings WHERE consumer = $1`, consumer).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, false, fmt.Errorf("the stored scoring settings of %s: %w", consumer, err)
	}
	return cfg, true, nil
}
