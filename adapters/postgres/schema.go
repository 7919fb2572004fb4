package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaDefault is the schema the adapter's tables live in unless the
// partner chooses another.
const SchemaDefault = "invictus"

// SchemaMaxLen bounds a schema name, so that the LISTEN channel
// "<schema>.outbox" stays within PostgreSQL's 63-byte identifiers.
const SchemaMaxLen = 48

// Errors of [Migrate]; test them with errors.Is.
var (
	// ErrSchemaNewer reports a schema migrated by a newer adapter: it holds
	// a migration this binary does not know.
	ErrSchemaNewer = errors.New("postgres: schema is newer than this adapter")
	// ErrMigrationChanged reports an applied migration whose text differs
	// from the one embedded in this binary.
	ErrMigrationChanged = errors.New("postgres: applied migration differs from the embedded one")
)

var reSchema = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ValidateSchema returns an error unless name can hold the adapter's
// tables: a lower-case identifier of 1 to [SchemaMaxLen] characters
// [a-z0-9_], not starting with a digit, and not reserved by PostgreSQL
// (pg_*, information_schema). The name is quoted wherever it is used all
// the same.
func ValidateSchema(name string) error {
	switch {
	case name == "":
		return errors.New("postgres: the schema name is empty")
	case len(name) > SchemaMaxLen:
		return fmt.Errorf("postgres: schema name %q is longer than %d characters", name, SchemaMaxLen)
	case !reSchema.MatchString(name):
		return fmt.Errorf("postgres: schema name %q must be lower-case letters, digits and _, not starting with a digit", name)
	case strings.HasPrefix(name, "pg_") || name == "information_schema":
		return fmt.Errorf("postgres: schema name %q is reserved by PostgreSQL", name)
	}
	return nil
}

// quoteIdent quotes one identifier for SQL.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// outboxChannel is the LISTEN/NOTIFY channel of schema's outbox; the
// notify trigger builds the same name from TG_TABLE_SCHEMA.
func outboxChannel(schema string) string { return schema + ".outbox" }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// schemaPlaceholder stands for the quoted schema name in the migrations:
// every object they create or use is qualified with it, so they never
// depend on search_path and never touch another schema.
const schemaPlaceholder = "{{schema}}"

// Migration is one versioned step of the adapter's schema.
type Migration struct {
	// Version orders the migrations; it is the number the file name
	// starts with.
	Version int
	// Name is the file name without the version and extension.
	Name string
	// SQL is the text with the schema placeholder {{schema}}.
	SQL string
	// Checksum is the SHA-256 of SQL, hex-encoded; it is recorded when the
	// migration is applied.
	Checksum string
}

// Migrations returns the embedded migrations in version order. It returns
// an error only if the embedded files are misnamed or misnumbered, which
// the package's tests rule out.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFiles)
}

var reMigration = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := reMigration.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("postgres: migration file %q is not NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", e.Name(), err)
		}
		v, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("postgres: migration versions must be 1, 2, 3...; found %d at position %d", m.Version, i+1)
		}
	}
	return ms, nil
}

// Render returns the migration's SQL for schema (quoted).
func (m Migration) Render(schema string) string {
	return strings.ReplaceAll(m.SQL, schemaPlaceholder, quoteIdent(schema))
}

// Beginner starts transactions; *pgxpool.Pool and *pgx.Conn are Beginners.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate creates schema if needed and applies, in one transaction, the
// embedded migrations that its schema_migrations table does not list yet,
// recording each with its checksum. Concurrent calls for the same schema
// wait for each other (transaction-level advisory lock), so several
// adapters may start at once. Every statement names its objects with the
// quoted schema: nothing outside schema is created or changed, whatever
// search_path says.
//
// It returns the versions it applied (none when the schema is up to
// date). Errors: an invalid schema name; ErrSchemaNewer when the schema
// holds a migration this binary does not know; ErrMigrationChanged when an
// applied migration's checksum differs; otherwise the database's error,
// wrapped with the migration's version.
func Migrate(ctx context.Context, db Beginner, schema string) ([]int, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: begin: %w", schema, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	q := quoteIdent(schema)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "invictus.migrate."+schema); err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: lock: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: create schema: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		checksum   text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: create schema_migrations: %w", schema, err)
	}
	rows, err := tx.Query(ctx, `SELECT version, checksum FROM `+q+`.schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: read schema_migrations: %w", schema, err)
	}
	applied := map[int]string{}
	var v int
	var sum string
	if _, err := pgx.ForEachRow(rows, []any{&v, &sum}, func() error { applied[v] = sum; return nil }); err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: read schema_migrations: %w", schema, err)
	}
	for v, sum := range applied {
		if v > len(ms) {
			return nil, fmt.Errorf("%w: %s has migration %d, this adapter knows %d", ErrSchemaNewer, schema, v, len(ms))
		}
		if m := ms[v-1]; sum != m.Checksum {
			return nil, fmt.Errorf("%w: %s migration %d (%s)", ErrMigrationChanged, schema, v, m.Name)
		}
	}
	var done []int
	for _, m := range ms {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if _, err := tx.Exec(ctx, m.Render(schema)); err != nil {
			return nil, fmt.Errorf("postgres: migrate %s: migration %d (%s): %w", schema, m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
			m.Version, m.Name, m.Checksum); err != nil {
			return nil, fmt.Errorf("postgres: migrate %s: record migration %d: %w", schema, m.Version, err)
		}
		done = append(done, m.Version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: migrate %s: commit: %w", schema, err)
	}
	return done, nil
}

// def gives *field the default d when it holds its zero value: the
// WithDefaults of the adapter's configs.
func def[T comparable](field *T, d T) {
	var zero T
	if *field == zero {
		*field = d
	}
}
