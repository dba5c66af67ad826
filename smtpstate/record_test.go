package smtpstate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimeRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Time
		json string
	}{
		{"zero is null", Time{}, "null"},
		{"microseconds kept", Time{time.UnixMicro(1795723151125644).UTC()}, "1795723151.125644"},
		{"leading zeros in the fraction", Time{time.UnixMicro(1700000000000001).UTC()}, "1700000000.000001"},
		{"whole second", Time{time.Unix(1700000000, 0).UTC()}, "1700000000.000000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.in)
			require.NoError(t, err)
			assert.Equal(t, c.json, string(b))
			var back Time
			require.NoError(t, json.Unmarshal(b, &back))
			assert.True(t, back.Equal(c.in.Time), "%v != %v", back, c.in)
		})
	}
	var bad Time
	assert.Error(t, json.Unmarshal([]byte(`"x"`), &bad))
	assert.Error(t, json.Unmarshal([]byte(`1.1234567`), &bad))
}

func TestStateRoundTrip(t *testing.T) {
	for s := StateConnect; s <= StateAfterGap; s++ {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		var back State
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back, string(b))
	}
	var bad State
	assert.Error(t, json.Unmarshal([]byte(`"nope"`), &bad))
}
