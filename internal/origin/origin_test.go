package origin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"https://app.example.com", "http://127.0.0.1:8081", "http://[::1]:3000", "https://xn--bcher-kva.example"} {
		assert.NoError(t, Check(ok), ok)
	}
	for _, bad := range []string{"app.example.com", "ftp://app.example", "https://app.example/", "https://app.example/x",
		"https://App.example", "https://app.example:443", "http://app.example:80", "https://app.example:0", "https://*.example",
		"https://u@app.example", "https://app.example?x", "http://::1:3000", "https://"} {
		assert.Error(t, Check(bad), bad)
	}
}

func TestListDecode(t *testing.T) {
	var l List
	require.NoError(t, l.Decode(" https://a.example, http://b.example:8081 ,,"))
	assert.Equal(t, List{"https://a.example", "http://b.example:8081"}, l)
	require.NoError(t, l.Decode(""))
	assert.Empty(t, l)
}
