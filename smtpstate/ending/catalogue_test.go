package ending

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeTable renders the catalogue as the README's verdict table.
func readmeTable() string {
	var b strings.Builder
	b.WriteString("| verdict | family | meaning | the ESA logs (no message open) |\n|---|---|---|---|\n")
	for _, c := range Catalogue {
		esa := "—"
		if len(c.ESA) > 0 {
			esa = "`" + strings.Join(c.ESA, "`, `") + "`"
		}
		b.WriteString("| `" + string(c.Verdict) + "` | " + string(c.Family) + " | " + c.Meaning + " | " + esa + " |\n")
	}
	return b.String()
}

// TestREADMEVerdicts: the README's verdict table is the catalogue.
func TestREADMEVerdicts(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "### Verdicts\n")
	require.GreaterOrEqual(t, i, 0, "README has no ### Verdicts section")
	s = s[i:]
	start := strings.Index(s, "| verdict |")
	require.GreaterOrEqual(t, start, 0, "no table under ### Verdicts")
	end := strings.Index(s[start:], "\n\n")
	require.Greater(t, end, 0)
	assert.Equal(t, readmeTable(), s[start:start+end+1], "README.md's verdict table differs from ending.Catalogue; it should read:\n%s", readmeTable())
}

func TestCatalogue(t *testing.T) {
	seen := map[Verdict]bool{}
	for _, c := range Catalogue {
		assert.False(t, seen[c.Verdict], "%s twice", c.Verdict)
		seen[c.Verdict] = true
		assert.NotEmpty(t, c.Family, c.Verdict)
		assert.NotEmpty(t, c.Meaning, c.Verdict)
		got, ok := Lookup(string(c.Verdict))
		assert.True(t, ok)
		assert.Equal(t, c.Verdict, got.Verdict)
		assert.Equal(t, c.Family, FamilyOf(string(c.Verdict)))
	}
	_, ok := Lookup("quit_")
	assert.False(t, ok, "no prefix matches")
	assert.Equal(t, Family(""), FamilyOf("server_fin"))
}
