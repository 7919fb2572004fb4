package postgres_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/invictus-network/invictus/adapters/postgres"
)

func TestMigrationsEmbedded(t *testing.T) {
	t.Parallel()
	ms, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 4 {
		t.Fatalf("%d migrations, want at least 4", len(ms))
	}
	for i, m := range ms {
		if m.Version != i+1 || m.Name == "" || len(m.Checksum) != 64 {
			t.Errorf("migration %d: %+v", i, m)
		}
		if !strings.Contains(m.SQL, "{{schema}}") {
			t.Errorf("migration %d does not use the schema placeholder", m.Version)
		}
		if got := m.Render("abc"); strings.Contains(got, "{{schema}}") || !strings.Contains(got, `"abc".`) {
			t.Errorf("migration %d renders without the quoted schema", m.Version)
		}
	}
}

func TestValidateSchema(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"invictus", "partner_1", "_x"} {
		if err := postgres.ValidateSchema(s); err != nil {
			t.Errorf("ValidateSchema(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "Invictus", "1abc", "a-b", `a"b`, "a.b", "pg_catalog", "information_schema", strings.Repeat("a", 49)} {
		if err := postgres.ValidateSchema(s); err == nil {
			t.Errorf("ValidateSchema(%q) = nil, want an error", s)
		}
	}
}

// catalogSnapshot lists every relation, function and trigger of the
// schemas in, with enough of its definition to notice a change. (Other
// tests and other people may create schemas in the same database at the
// same time, so the snapshot is limited to the schemas a misdirected
// migration would write into: those on its search_path.)
func catalogSnapshot(t *testing.T, p *pgEnv, in ...string) []string {
	t.Helper()
	rows, err := p.pool.Query(testCtx(t), `
		SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || c.relnatts || ' ' || coalesce(c.relacl::text, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1)
		UNION ALL
		SELECT 'fn ' || n.nspname || '.' || p.proname || ' ' || md5(p.prosrc)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1)
		UNION ALL
		SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text FROM pg_trigger t
		JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1)`, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestMigrateIdempotentAndConfinedToItsSchema(t *testing.T) {
	p := newPG(t)
	ctx := testCtx(t)

	// A decoy schema with objects of the same names, first on search_path
	// of the migrating connection: nothing may land there or change.
	decoy := "t_" + randomSuffix()
	dq := pgx.Identifier{decoy}.Sanitize()
	for _, sql := range []string{
		`CREATE SCHEMA ` + dq,
		`CREATE TABLE ` + dq + `.outbox (id int)`,
		`CREATE TABLE ` + dq + `.inbox (x text)`,
		`CREATE FUNCTION ` + dq + `.uuid_v7() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'`,
		`CREATE FUNCTION ` + dq + `.gen_random_uuid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'`,
	} {
		if _, err := p.pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() { _, _ = p.pool.Exec(testCtx(t), `DROP SCHEMA `+dq+` CASCADE`) })
	pool := p.newPool(p.appName+"-sp", map[string]string{"search_path": decoy + ",public"})

	before := catalogSnapshot(t, p, decoy, "public")
	applied, err := postgres.Migrate(ctx, pool, p.schema)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	ms, _ := postgres.Migrations()
	if len(applied) != len(ms) {
		t.Fatalf("first Migrate applied %v, want all %d", applied, len(ms))
	}
	if after := catalogSnapshot(t, p, decoy, "public"); !slices.Equal(before, after) {
		t.Errorf("Migrate changed objects outside its schema:\nbefore %d objects, after %d\n%v", len(before), len(after), diff(before, after))
	}
	if n := p.count(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname IN ('outbox', 'inbox', 'envelopes', 'referrals', 'offers', 'flows_between_countries')`, p.schema); n != 6 {
		t.Errorf("found %d of 6 expected objects in the schema %s", n, p.schema)
	}
	again, err := postgres.Migrate(ctx, pool, p.schema)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
	}
	if n := p.count(`SELECT count(*) FROM ` + p.q() + `.schema_migrations`); n != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
	}

	// The decoy's functions are not the ones the outbox uses.
	ids := p.insert(requestedRow())
	var ref string
	if err := p.pool.QueryRow(ctx, `SELECT referral_id FROM `+p.q()+`.outbox WHERE id = $1`, ids[0]).Scan(&ref); err != nil {
		t.Fatal(err)
	}
	if ref != ids[0] || ids[0][14] != '7' {
		t.Errorf("row id %s (referral %s): want a UUIDv7 used as the new referral's id", ids[0], ref)
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, "- "+s)
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			out = append(out, "+ "+s)
		}
	}
	return out
}

func TestMigrateConcurrently(t *testing.T) {
	p := newPG(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	results := make([][]int, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = postgres.Migrate(ctx, p.pool, p.schema) })
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
		total += len(results[i])
	}
	ms, _ := postgres.Migrations()
	if total != len(ms) {
		t.Errorf("concurrent Migrate applied %d migrations in all, want %d once", total, len(ms))
	}
}

func TestMigrateRefusesChangedOrNewerSchema(t *testing.T) {
	p := newPG(t)
	p.migrate()
	ctx := testCtx(t)
	if _, err := p.pool.Exec(ctx, `UPDATE `+p.q()+`.schema_migrations SET checksum = 'x' WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, p.pool, p.schema); !errors.Is(err, postgres.ErrMigrationChanged) {
		t.Errorf("Migrate after a checksum change = %v, want ErrMigrationChanged", err)
	}
	if _, err := p.pool.Exec(ctx, `UPDATE `+p.q()+`.schema_migrations m SET checksum = $1 WHERE version = 2`, mustMigration(t, 2).Checksum); err != nil {
		t.Fatal(err)
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO `+p.q()+`.schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, p.pool, p.schema); !errors.Is(err, postgres.ErrSchemaNewer) {
		t.Errorf("Migrate of a newer schema = %v, want ErrSchemaNewer", err)
	}
	if _, err := postgres.Migrate(ctx, p.pool, "Bad-Name"); err == nil {
		t.Error("Migrate with an invalid schema name succeeded")
	}
}

func mustMigration(t *testing.T, v int) postgres.Migration {
	t.Helper()
	ms, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms[v-1]
}

func TestEnvelopesTableIsRestricted(t *testing.T) {
	p := newPG(t)
	p.migrate()
	// No grant to PUBLIC (grantee 0) on the envelopes table, explicit or
	// default.
	n := p.count(`SELECT count(*) FROM pg_class c,
		aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
		WHERE c.oid = ($1 || '.envelopes')::regclass AND a.grantee = 0`, p.q())
	if n != 0 {
		t.Errorf("PUBLIC holds %d privileges on envelopes", n)
	}
	if p.count(`SELECT count(*) FROM pg_class WHERE oid = ($1 || '.envelopes')::regclass AND relacl IS NOT NULL`, p.q()) != 1 {
		t.Error("envelopes has no explicit ACL: REVOKE ALL FROM PUBLIC was not applied")
	}
}
