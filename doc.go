// Package litestream replicates a SQLite database in WAL mode: it copies
// every committed transaction from the database's WAL into a shadow WAL of
// its own, ships the shadow WAL in segments to replicas (a directory, S3
// and other stores), and restores a database from them. It is a drop-in
// rebuild of Litestream v0.3: same configuration, same replica layout.
//
// A DB watches one database and feeds its Replicas; a Replica ships to
// one ReplicaClient; PlanRestore and Restore read replicas back. The
// SQLite WAL format is internal/walformat. docs/architecture.md draws
// the data's path and says which file owns each step.
//
// # What the engine promises
//
// It never harms the application's database, and it never loses a
// committed transaction that reached a replica. Every rule below serves
// one of the two. Each names the function that keeps it and the test that
// covers it; checkInvariants (invariants_test.go) checks rules 1 to 5 in
// every engine test when its DB closes.
//
//  1. Committed means what SQLite's wal-index says: its header's mxFrame,
//     for the WAL incarnation its salts name. A frame with a valid
//     checksum is not committed just because of that: a writer killed
//     between writing a commit frame and updating the wal-index leaves
//     such frames, and SQLite's next writer writes over them. The shadow
//     WAL ends on the commit frame at mxFrame, never past it.
//     Kept by: DB.copyWALFrames (walIndexHeader.committedEnd) and
//     shadowWAL.Append.
//     Tests: TestDB_FramesPastWALIndexAreNotCommitted,
//     TestShadowWAL_AppendCopiesToCommittedEnd,
//     TestShadowWAL_AppendRefusesUncommittedEnd.
//  2. After the first sync, our read transaction is open at every moment
//     the engine is not inside a checkpoint under the write lock. Its WAL
//     read mark keeps every other connection from restarting the WAL over
//     frames the shadow WAL lacks. It moves forward only on a second
//     connection that opens before the first one ends, and only when a
//     frame past the old snapshot rules out read-mark 0.
//     Kept by: DB.startLocked, DB.acquireRead, dbConns.advanceRead
//     (guarded by DB.readBehind), checkpointLocked (re-acquired before
//     unlockWrite).
//     Tests: TestDB_AdvanceRead, TestDB_CheckpointCatchesUpBeforeLock.
//  3. At most one WAL restart follows our checkpoint, and only before any
//     other frame is appended to the old WAL. Our checkpoint runs under
//     the write lock, after a copy that reached the wal-index's committed
//     end, and our read transaction is open again before the lock is
//     released. The next copy accepts exactly that restart as a rollover
//     to the next shadow index (restartAllowed, salt1 + 1). Any other
//     change of WAL header starts a new generation.
//     Kept by: DB.checkpointLocked, DB.startLocked, DB.copyWALFrames.
//     Tests: TestDB_ReplicateRestore, TestDB_CheckpointedWhileStopped,
//     TestDB_AppCheckpointWhileStopped.
//  4. The shadow WAL is fsynced before the write lock is released: once
//     the lock is released the WAL may restart, and the shadow must then
//     hold the old WAL's frames durably. A copy made under the lock leaves
//     its fsync to fsyncPending, which runs beside the checkpoint.
//     Kept by: DB.unlockWrite, shadowWAL.fsyncPending, shadowWAL.Append
//     (writeHeld).
//     Tests: TestDB_LockedCopySyncedBeforeUnlock.
//  5. The read floor (where our read transaction's snapshot is known to
//     be) is at or before the shadow end. A checkpoint, ours or the
//     application's, copies into the database file only frames at or
//     below our snapshot, and the shadow holds all of them before DB.mu is
//     released. So a snapshot, which reads the database file, never holds
//     a page of a commit that its index's segments lack.
//     Kept by: DB.copyWAL, DB.checkpointBeforeLock.
//     Tests: TestDB_SnapshotBesideHeldCheckpoint.
//  6. No checkpoint runs while a snapshot reads the database file.
//     Snapshots hold ckptMu shared. A policy checkpoint only tries it
//     (checkpointIfNeeded gives up and waits for the next sync), and an
//     explicit Checkpoint waits for it.
//     Kept by: Replica.snapshotLocked, DB.checkpointIfNeeded,
//     DB.Checkpoint.
//     Tests: TestDB_SnapshotBesideHeldCheckpoint (no test yet forces a
//     checkpoint into a snapshot's read).
//  7. A shadow index is closed only when the next one starts: after the
//     one restart of rule 3 (nextIndex), or when the index limit starts a
//     new generation. Before the next index starts, the old file is
//     fsynced and truncated to its last commit. If the next index cannot
//     be created, the shadow stays whole on the old one. A recovered index
//     drops a torn or uncommitted tail on open. An index is deleted only
//     once every replica is in the current generation and past it by two
//     indexes (one spare), and never the current one. A generation's
//     shadow files go when a new generation starts.
//     Kept by: shadowWAL.startIndex, shadowWAL.truncateToCommit,
//     openShadowWAL, DB.removeShadowBefore, shadowWAL.RemoveBefore,
//     DB.removeOldGenerations.
//     Tests: TestShadowWAL_TornTailTruncated,
//     TestShadowWAL_FailedStartIndex, TestDB_RolledBackFramesNeverShipped.
//  8. A segment holds the shadow bytes [offset, end) of one index. It
//     starts where the replica's previous segment of that index ended (at
//     0 it starts with the WAL header) and ends at a committed size, so on
//     a commit frame. It never spans two indexes and never holds a frame
//     of a rolled-back transaction. It is named by its index and offset,
//     and an object of that name is overwritten only with the same bytes,
//     or when it is provably damaged.
//     Kept by: Replica.syncSegments, Replica.uploadSegment,
//     Replica.restartAt.
//     Tests: TestDB_RolledBackFramesNeverShipped,
//     TestDB_RolledBackTailOverwritten, TestDB_DamagedLastSegment.
//  9. A replica deletes nothing before what replaces it is durable in
//     that replica. Retention deletes only what is older than a kept
//     snapshot already stored, and writes the current generation's new
//     snapshot first. Only a definite answer from the store (an object is
//     missing, does not decode, or differs from the shadow) makes a
//     replica start over. An error that proves nothing fails the sync,
//     which is retried. Data that the shadow never had (a host rolled
//     back) is kept, and a new generation starts.
//     Kept by: Replica.restartAt, Replica.EnforceRetention,
//     Replica.locate, Replica.diverged.
//     Tests: TestRetention, TestRetention_StoreGoneDuringRestart,
//     TestRetention_RestartHeals, TestReplica_TransientLocateError,
//     TestReplica_DamagedLastSegmentStoreGone,
//     TestReplica_AheadOfRolledBackHostKept.
//  10. The process holds one descriptor of the database file and one of
//     its -shm for as long as it has SQLite connections to them, and
//     closes them only after those connections. Nothing else in the
//     process opens either file by path: snapshots read through the
//     engine's descriptor. fcntl locks belong to a process, and closing
//     any descriptor of a file drops every lock the process holds on it,
//     SQLite's included. Without them, the application's last close would
//     checkpoint and delete the WAL under the engine. The WAL notifier
//     watches the database's directory, which opens no descriptor of it.
//     Kept by: openDBFiles, DB.closeConns, DB.databaseFile (invariant 1
//     of db_files.go), WALNotifier (invariant 3 of wal_notify.go).
//     Tests: TestDB_KeepsSQLiteLocks.
//  11. The engine never writes into the application's database except
//     through SQLite: its own rows in _litestream_seq and _litestream_lock,
//     and PASSIVE checkpoints. Its connections never checkpoint on close.
//     A database file, -wal or -shm replaced behind its back is noticed:
//     the connections are closed without a checkpoint, and a new
//     generation starts.
//     Kept by: engineConnector, setNoCheckpointOnClose, DB.checkReplaced.
//     Tests: TestDB_CloseNeverCheckpoints,
//     TestDB_WALReplacedBehindTheEngine.
//  12. A cancelled context never leaves a SQLite lock held. The rollbacks
//     that release locks ignore the context, and a BEGIN that "failed" as
//     its context ended is rolled back.
//     Kept by: dbConns.releaseRead, dbConns.unlockWrite,
//     rollbackFailedBegin; checkpointLocked and startLocked run on
//     context.WithoutCancel.
//     Tests: TestDBConns_CancelledContextReleasesLocks,
//     TestDBConns_CancelledBeginLeavesNoTransaction.
//
// # Lock order
//
// Replica.mu → DB.ckptMu → DB.mu. Never take one to the left while holding
// one to its right. Replica.statusMu and OpCounter.mu are leaves: nothing
// is taken under them.
//   - Replica.mu serializes one replica's sync, snapshot, retention and
//     validation. Its snapshot takes ckptMu shared, then DB.mu for the
//     copy before it (Replica.snapshotLocked).
//   - DB.ckptMu keeps checkpoints out while a snapshot reads the database
//     file. A checkpoint takes it exclusive, then DB.mu (DB.Checkpoint,
//     DB.checkpointIfNeeded, which releases DB.mu before TryLock).
//   - DB.mu guards the DB's state, its connections and the shadow WAL.
//     Every SQLite lock the engine takes is taken and released by a call
//     that holds DB.mu, so none is held while DB.mu is free, except the
//     read transaction of rule 2.
//
// # Names of locks
//
// A Locked suffix (syncLocked, checkpointLocked, startLocked,
// snapshotLocked) means that the caller holds a Go mutex: DB.mu, or
// Replica.mu for snapshotLocked. Each function's comment says which. A
// Held suffix names a SQLite lock held by one of our connections:
//   - dbConns.readHeld: our read transaction is open on dbConns.read. It
//     holds a WAL read mark (a shared WAL_READ_LOCK(n) in the -shm) whose
//     snapshot caps every checkpoint and forbids a WAL restart.
//   - dbConns.writeHeld, and Append's writeHeld: our BEGIN IMMEDIATE
//     transaction on dbConns.write holds SQLite's WAL_WRITE_LOCK. No other
//     connection can commit until unlockWrite rolls it back.
//
// The flags beside them:
//   - DB.started: the first sync ran under the write lock, and from then
//     on readHeld is true (rule 2).
//   - DB.restartAllowed: our last checkpoint backfilled the whole WAL, so
//     the one restart of rule 3 may follow.
//   - shadowWAL.needsFsync: committed bytes of the shadow await an fsync.
//     This is not a lock, but it may be true only while writeHeld is
//     (rule 4).
//
// The verbs: lockWrite, tryLockWrite and unlockWrite take and release
// SQLite's write lock; acquireRead, advanceRead and releaseRead do the
// same for the read transaction. DB.Sync copies the WAL into the shadow
// WAL (then runs the checkpoint policy), and Replica.Sync ships the shadow
// WAL to a replica. fsync is the system call: fsyncPending, syncFile and
// SyncDir.
package litestream
