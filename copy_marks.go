package litestream

import "time"

// copyMarks remembers when the shadow WAL reached recent positions, so that
// a replica's lag can be told in time: the age of the oldest commit it does
// not have. It keeps a bounded window; a replica further behind than the
// window is reported with the age of the oldest mark.
type copyMarks struct {
	marks []copyMark
}

type copyMark struct {
	pos Pos
	at  time.Time
}

const maxCopyMarks = 4096

func (m *copyMarks) add(p Pos, at time.Time) {
	if len(m.marks) >= maxCopyMarks {
		m.marks = append(m.marks[:0], m.marks[maxCopyMarks/2:]...)
	}
	m.marks = append(m.marks, copyMark{pos: p, at: at})
}

// firstAfter returns the time of the first mark past pos: when the first
// commit that pos lacks was copied.
func (m *copyMarks) firstAfter(pos Pos) (time.Time, bool) {
	for _, k := range m.marks {
		if k.pos.Generation != pos.Generation || pos.Less(k.pos) {
			return k.at, true
		}
	}
	return time.Time{}, false
}
