//go:build !patchgrid_static

package libchdb

import "github.com/ebitengine/purego"

// dlopen and bind go through purego. purego's dlopen needs the system's
// dynamic loader, so a binary that imports it is dynamically linked (it
// has an ELF interpreter) even with CGO_ENABLED=0; see dl_static.go for
// the build without it.
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func bind(h uintptr, name string, fn any) error {
	sym, err := purego.Dlsym(h, name)
	if err != nil {
		return err
	}
	purego.RegisterFunc(fn, sym)
	return nil
}
