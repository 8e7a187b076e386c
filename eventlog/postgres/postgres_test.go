package postgres

import (
	"context"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/eventlogtest"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

func TestContract(t *testing.T) {
	eventlogtest.Run(t, func(t *testing.T) *eventlog.Log {
		l, err := Open(context.Background(), pgtest.DSN(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// TestMigrationsIdempotent opens the same schema twice, as two replicas
// starting together would.
func TestMigrationsIdempotent(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	logs := make(chan *eventlog.Log, 2)
	for i := 0; i < 2; i++ {
		go func() {
			l, err := Open(ctx, dsn, Options{})
			errs <- err
			logs <- l
		}()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if l := <-logs; l != nil {
			defer l.Close()
		}
	}
}
