package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/cropshield/cropshield/internal/dburl"
)

// defaultDB is --db's default: a bbolt file.
const defaultDB = "data/cropshield.db"

// registerDB adds --db (CROPSHIELD_DB) to a command that opens the store.
func registerDB(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "db", defaultDB, "the database: a bbolt file (created 0600; one process at a time) or a postgres://USER:PASSWORD@HOST/DB URL (any number of serve replicas)")
}

// bboltOnly refuses a PostgreSQL URL for a command that works on a bbolt file (backup,
// compact); instead says what does the job on PostgreSQL.
func bboltOnly(cmd, db, instead string) error {
	if !dburl.IsURL(db) {
		return nil
	}
	return fmt.Errorf("%w: %s works on a bbolt file, and --db %s is a PostgreSQL database: %s", errUsage, cmd, dburl.Redact(db), instead)
}

// defaultReplica is --replica's default: the host name.
func defaultReplica() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "cropshield"
	}
	return name
}

// errReplicaName: --replica must name the process plainly.
var errReplicaName = errors.New("--replica: want 1 to 64 letters, digits, '.', '_' or '-'")

// checkReplica checks a replica name: it appears in logs and in the store's leases.
func checkReplica(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("%w: %w (got %q)", errUsage, errReplicaName, name)
	}
	return nil
}
