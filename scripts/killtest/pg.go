package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshDatabase creates an empty database on the PostgreSQL server of serverURL (whose user may
// create databases) and returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, serverURL string) (string, func() error, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("--pg-url: %w", errors.New("not a URL")) // the parse error would quote it
	}
	name := fmt.Sprintf("killtest_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000)
	if err := adminExec(ctx, serverURL, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return "", nil, fmt.Errorf("create the run's database on %s: %w", u.Redacted(), err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, serverURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop the run's database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// adminExec runs one statement on the server's database of serverURL.
func adminExec(ctx context.Context, serverURL, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, serverURL)
	if err != nil {
		return err
	}
	_, err = conn.Exec(cctx, sql)
	return errors.Join(err, conn.Close(cctx))
}
