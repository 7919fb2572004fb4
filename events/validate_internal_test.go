package events

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestFastRulesMatchValidator checks the package's unique, latitude,
// longitude and pasttime rules against the validator's own on edge cases
// and random values: a bound off by one, a duplicate missed in a long
// list, or a NaN let through fails it.
func TestFastRulesMatchValidator(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v any, tag string) {
		t.Helper()
		got, want := validate.Var(v, tag) == nil, baked.Var(v, tag) == nil
		if got != want {
			t.Errorf("%s of %#v: %v; the validator's own rule says %v", tag, v, got, want)
		}
	}
	floats := []float64{0, math.Copysign(0, -1), 90, -90, 180, -180, 90.0000001, -90.0000001, 180.0000001, -180.0000001,
		89.99999999999999, 179.99999999999997, 5e-324, -5e-324, 1e300, math.NaN(), math.Inf(1), math.Inf(-1), 38.72, -9.14}
	for range 5000 {
		floats = append(floats, (rng.Float64()-0.5)*400, math.Round((rng.Float64()-0.5)*40000)/100)
	}
	for _, f := range floats {
		for _, tag := range []string{"latitude", "longitude"} {
			check(f, tag)
			check(&f, tag)
			check(float32(f), tag)
			check(strconv.FormatFloat(f, 'f', -1, 64), tag) // not a number: the validator's rule
		}
	}
	lists := [][]string{nil, {}, {"a"}, {"a", "a"}, {"a", "b"}, {"a", "b", "a"}, {"", ""}}
	for range 2000 {
		n := rng.IntN(80)
		l := make([]string, n)
		for i := range l {
			l[i] = strconv.Itoa(rng.IntN(2 * n * n))
		}
		lists = append(lists, l)
	}
	for _, l := range lists {
		check(l, "unique")
	}
	check([]int{1, 2, 1}, "unique")
	check([]int{1, 2, 3}, "unique")
	check(map[string]int{"a": 1, "b": 1}, "unique")

	type consent struct {
		GivenAt time.Time `validate:"required,pasttime"`
	}
	now := time.Now()
	for _, at := range []time.Time{now, now.Add(MaxClockSkew + time.Minute), earliestTime.Add(-time.Second), earliestTime} {
		c := consent{GivenAt: at}
		byPointer, byValue := validate.Struct(&c) == nil, validate.Struct(c) == nil
		want := plausibleTime(at, time.Now()) == ""
		if byPointer != want || byValue != want {
			t.Errorf("pasttime of %s: %v by pointer, %v by value; want %v", at, byPointer, byValue, want)
		}
	}
}
