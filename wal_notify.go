package litestream

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// WALNotifier tells databases' monitors when their WAL may have changed,
// through one inotify instance (fsnotify) for any number of databases, so
// that an idle database costs no look at its files.
//
// What must hold, for a database subscribed:
//  1. Every write to its WAL, and every create, remove or rename of the
//     database, its -wal or -shm, is followed by a wake-up on its channel:
//     the kernel reports each, and an overflow of the kernel's queue, or a
//     watch that fails, wakes every subscriber.
//  2. A wake-up is a hint, never the truth: the monitor then looks at the
//     WAL and the wal-index as it would have on its own. A spurious one
//     costs a look; a lost one, a backstop interval (see DB.monitor).
//  3. The watch is on the database's directory, never on its files: an
//     inotify watch opens no descriptor of the file, so it cannot drop
//     SQLite's locks (invariant 1 of db_files.go), and it survives the WAL
//     being deleted and created again.
//
// Writes through mmap (SQLite's -shm) are not reported; SQLite writes the
// WAL with write(2), which is.
type WALNotifier struct {
	w    *fsnotify.Watcher
	done chan struct{} // closed when run returns

	mu   sync.Mutex
	dirs map[string]int                  // watched directory → its listening subscribers
	subs map[string]map[*walSub]struct{} // database, -wal or -shm path → its subscribers
	byDB map[*walSub][]string            // each subscriber's paths
	all  map[*walSub]struct{}            // every subscriber, for overflows
}

// walSub is one database's subscription: a channel with room for one
// wake-up, so that the notifier never blocks on a busy monitor and wake-ups
// that come while one is pending merge.
type walSub struct {
	c chan struct{}
}

func (s *walSub) wake() {
	select {
	case s.c <- struct{}{}:
	default:
	}
}

// notifierBuffer is how many events the kernel reader may hand over
// before the notifier takes them.
const notifierBuffer = 256

// NewWALNotifier starts a notifier. Close stops it.
func NewWALNotifier() (*WALNotifier, error) {
	// Buffered, so that a burst of writes is handed over in one go rather
	// than one goroutine switch an event.
	w, err := fsnotify.NewBufferedWatcher(notifierBuffer)
	if err != nil {
		return nil, fmt.Errorf("start the WAL notifier (inotify): %w", err)
	}
	n := &WALNotifier{w: w, done: make(chan struct{}),
		dirs: map[string]int{}, subs: map[string]map[*walSub]struct{}{},
		byDB: map[*walSub][]string{}, all: map[*walSub]struct{}{}}
	go n.run()
	return n, nil
}

// Close stops the notifier; subscribers get no more wake-ups.
func (n *WALNotifier) Close() error {
	err := n.w.Close()
	<-n.done
	return err
}

// run delivers the kernel's events until the watcher is closed.
func (n *WALNotifier) run() {
	defer close(n.done)
	for {
		select {
		case ev, ok := <-n.w.Events:
			if !ok {
				return
			}
			n.mu.Lock()
			for s := range n.subs[ev.Name] {
				s.wake()
			}
			n.mu.Unlock()
		case _, ok := <-n.w.Errors:
			if !ok {
				return
			}
			// An overflow (fsnotify.ErrEventOverflow) lost events of
			// unknown databases, and any other error may have: wake all.
			n.wakeAll()
		}
	}
}

func (n *WALNotifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.all {
		s.wake()
	}
}

// walSubscription is one database's subscription. It starts listening;
// mute stops the kernel's reports for it (the directory's watch goes when
// no subscriber there listens), listen brings them back. A monitor mutes
// while it looks at its WAL every walWatchInterval anyway, so that a busy
// database costs no event per write.
type walSubscription struct {
	n         *WALNotifier
	s         *walSub
	dir       string
	listening bool
}

// C returns the channel of wake-ups.
func (sub *walSubscription) C() <-chan struct{} { return sub.s.c }

// subscribe watches the database at path: its channel gets a wake-up after
// any change of the database file, its -wal or its -shm while it listens.
func (n *WALNotifier) subscribe(path string) (*walSubscription, error) {
	path = filepath.Clean(path)
	sub := &walSubscription{n: n, s: &walSub{c: make(chan struct{}, 1)}, dir: filepath.Dir(path)}
	if err := sub.listen(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	paths := []string{path, path + "-wal", path + "-shm"}
	for _, p := range paths {
		if n.subs[p] == nil {
			n.subs[p] = map[*walSub]struct{}{}
		}
		n.subs[p][sub.s] = struct{}{}
	}
	n.byDB[sub.s] = paths
	n.all[sub.s] = struct{}{}
	return sub, nil
}

// listen makes sure the kernel reports changes in the database's
// directory. Changes between a mute and the listen that follows are not
// reported: the caller looks at the WAL after listen returns.
func (sub *walSubscription) listen() error {
	n := sub.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if sub.listening {
		return nil
	}
	if n.dirs[sub.dir] == 0 {
		if err := n.w.Add(sub.dir); err != nil {
			if errors.Is(err, fsnotify.ErrClosed) {
				return errors.New("the WAL notifier is closed")
			}
			return fmt.Errorf("watch %s: %w", sub.dir, err)
		}
	}
	n.dirs[sub.dir]++
	sub.listening = true
	return nil
}

// mute stops the reports of this subscription's directory unless another
// subscriber there listens.
func (sub *walSubscription) mute() {
	n := sub.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if !sub.listening {
		return
	}
	sub.listening = false
	if n.dirs[sub.dir]--; n.dirs[sub.dir] == 0 {
		delete(n.dirs, sub.dir)
		_ = n.w.Remove(sub.dir) // fails only once the directory is gone, which removed the watch
	}
}

// cancel ends the subscription.
func (sub *walSubscription) cancel() {
	sub.mute()
	n := sub.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.byDB[sub.s] {
		delete(n.subs[p], sub.s)
		if len(n.subs[p]) == 0 {
			delete(n.subs, p)
		}
	}
	delete(n.byDB, sub.s)
	delete(n.all, sub.s)
}
