package bench

import "sync"

// Everything a suite creates outside its own process (lab namespaces,
// bpffs mounts) is registered here while it exists, so an interrupted
// bench (Ctrl-C, SIGTERM) can still remove it: see Abort.
var (
	liveMu   sync.Mutex
	liveNext int
	liveObjs = map[int]func(){}
)

// track registers cleanup and returns the function that unregisters it;
// call that once the object was released the normal way.
func track(cleanup func()) (untrack func()) {
	liveMu.Lock()
	defer liveMu.Unlock()
	id := liveNext
	liveNext++
	liveObjs[id] = cleanup
	return func() {
		liveMu.Lock()
		delete(liveObjs, id)
		liveMu.Unlock()
	}
}

// Abort releases everything still registered, newest first. main calls it
// when the bench is interrupted, before exiting.
func Abort() {
	liveMu.Lock()
	objs := liveObjs
	liveObjs = map[int]func(){}
	liveMu.Unlock()
	for id := liveNext - 1; id >= 0; id-- {
		if f, ok := objs[id]; ok {
			f()
		}
	}
}
