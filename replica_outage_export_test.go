package litestream

import "time"

// SetOutageWarnInterval makes r, while its syncs keep failing, warn every d
// instead of every minute.
func SetOutageWarnInterval(r *Replica, d time.Duration) { r.outageWarnEvery = d }
