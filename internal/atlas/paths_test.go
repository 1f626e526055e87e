package atlas

import "testing"

func TestUnderRoot(t *testing.T) {
	roots := []string{"/mnt/data/", "/srv"}
	for path, want := range map[string]bool{
		"/mnt/data": true, "/mnt/data/x": true, "/srv/a/b": true, "/srv": true,
		"/mnt/database": false, "/mnt/data/../../etc": false, "/srv/../etc": false, "/": false,
	} {
		if got := UnderRoot(path, roots); got != want {
			t.Errorf("UnderRoot(%q) = %v, want %v", path, got, want)
		}
	}
	if UnderRoot("/", []string{"/"}) != true || UnderRoot("/etc", []string{"/"}) != true {
		t.Error("the root / holds everything")
	}
}
