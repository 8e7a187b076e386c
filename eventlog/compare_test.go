package eventlog

import "testing"

// TestEveryViewHasItsKey: CheckViews merges views by primary key, so a
// view added to viewTables must say its key in viewKeys, and only views
// belong there.
func TestEveryViewHasItsKey(t *testing.T) {
	for _, v := range viewTables {
		if len(viewKeys[v]) == 0 {
			t.Errorf("view %s has no primary key in viewKeys (compare.go)", v)
		}
	}
	if len(viewKeys) != len(viewTables) {
		t.Errorf("viewKeys names %d tables, viewTables %d: only views are compared", len(viewKeys), len(viewTables))
	}
}
