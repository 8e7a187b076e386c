package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/registry"
)

// tierFlags registers the tiering policy's flags. check reports a bad
// value from the environment, after parsing.
func tierFlags(fs *flag.FlagSet) (p *registry.TierPolicy, check func() error) {
	p = &registry.TierPolicy{}
	var envErr error
	fs.DurationVar(&p.UnreadFor, "tier-unread-for", envDuration("ARTIFACTSTORE_TIER_UNREAD_FOR", 0), "move blobs not read for this long to the cold tier, e.g. 720h (env ARTIFACTSTORE_TIER_UNREAD_FOR)")
	fs.Var(sizeValue{&p.LargerThan}, "tier-larger-than", "move blobs larger than this to the cold tier, e.g. 1GiB (env ARTIFACTSTORE_TIER_LARGER_THAN)")
	if v := env("ARTIFACTSTORE_TIER_LARGER_THAN", ""); v != "" {
		if envErr = (sizeValue{&p.LargerThan}).Set(v); envErr != nil {
			envErr = fmt.Errorf("ARTIFACTSTORE_TIER_LARGER_THAN: %w", envErr)
		}
	}
	fs.BoolVar(&p.Promote, "promote-on-read", envBool("ARTIFACTSTORE_PROMOTE_ON_READ"), "move a cold blob back to the hot tier when it is read (env ARTIFACTSTORE_PROMOTE_ON_READ)")
	fs.DurationVar(&p.Grace, "tier-grace", envDuration("ARTIFACTSTORE_TIER_GRACE", time.Minute), "keep a moved blob's old copy this long, for reads already under way (env ARTIFACTSTORE_TIER_GRACE)")
	return p, func() error { return envErr }
}

// sizeValue is a flag holding a byte count, read by parseSize and written
// back in the largest unit that divides it (10GiB), so that config check
// prints it as written and a reload sees a change of it.
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string {
	if v.n == nil || *v.n == 0 {
		return ""
	}
	for _, u := range sizeUnits() {
		if u.mult > 1 && *v.n%u.mult == 0 {
			return strconv.FormatInt(*v.n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(*v.n, 10)
}

func (v sizeValue) Set(s string) (err error) {
	*v.n, err = parseSize(s)
	return err
}

type sizeUnit struct {
	suffix string
	mult   int64
}

// sizeUnits are the suffixes of byte counts, largest first.
func sizeUnits() []sizeUnit {
	return []sizeUnit{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
}

// parseSize reads a byte count: 1048576, 512KiB, 10MiB, 1GiB, 2TiB.
func parseSize(s string) (int64, error) {
	for _, u := range sizeUnits() {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB or TiB", s)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB or TiB", s)
	}
	return n, nil
}

// tier applies the tiering policy once, or moves one blob (--blob, --to).
func tier(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tier", flag.ExitOnError)
	sc := storeFlags(fs)
	policy, checkPolicy := tierFlags(fs)
	blob := fs.String("blob", "", "move only this blob (any of its digests) …")
	to := fs.String("to", "cold", "… to this tier: hot or cold")
	fs.Parse(args)
	if err := checkPolicy(); err != nil {
		return err
	}
	st, err := openStore(ctx, sc, exclusive)
	if err != nil {
		return err
	}
	defer st.Close()
	if st.cold == nil {
		return errors.New("tier: no cold tier: give --cold-storage s3://BUCKET/PREFIX")
	}
	reg, err := registry.New(registry.Options{Log: st.log, Blobs: st.blobs, Cold: st.cold, Tiering: *policy})
	if err != nil {
		return err
	}
	if *blob != "" {
		if err := reg.MoveBlob(ctx, *blob, *to); err != nil {
			return err
		}
		fmt.Printf("moved %s to the %s tier\n", *blob, *to)
		return nil
	}
	if policy.UnreadFor == 0 && policy.LargerThan == 0 {
		return errors.New("tier: give a policy (--tier-unread-for, --tier-larger-than) or --blob")
	}
	n, err := reg.TierPass(ctx, time.Now())
	fmt.Printf("moved %d blobs to the cold tier\n", n)
	return err
}
