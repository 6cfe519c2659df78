//! The closed question's read, on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each statement and each
//! row across to it and back. At thousands of questions per second those hand-offs (a futex
//! wake-up and a context switch each way) cost more than SQLite's own work: a profile of the
//! load benchmark showed a fifth of the CPU in the kernel's task switching. The closed
//! question's read is one indexed lookup of a handful of rows in pages that are nearly always in
//! memory, so here it runs directly, with rusqlite, on a read-only connection to the same file
//! taken from a small pool. It is the only statement that does; everything else stays on sqlx.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Mutex;

use otv_core::{Answer, Sides};
use rusqlite::{Connection, OpenFlags};

use crate::Result;
use crate::codec::{self, AnswerCols, answer_columns, from_epoch_micros};

/// Idle connections kept for reuse; more are opened when more callers read at once.
const KEEP: usize = 8;

/// Read-only connections to one database file, used on the caller's thread.
pub(super) struct HotReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl HotReaders {
    pub(super) fn new(path: PathBuf) -> HotReaders {
        HotReaders {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The current answers of the citizen with `pseudonym` that name both `sides`
    /// ([`Backend::answers_between`](crate::Backend::answers_between)).
    pub(super) fn answers_between(&self, pseudonym: &[u8], sides: &Sides) -> Result<Vec<Answer>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let answers = read(&conn, pseudonym, sides);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP {
            idle.push(conn);
        }
        answers
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Not mapped, unlike the sqlx readers, and SQLite's default page cache. A read
        // transaction that finds the database changed drops its connection's page cache and
        // unmaps the file. When every audit batch was a commit, mapping made every read pay for
        // mapping again, and plain reads from the OS page cache measured 5-20% more closed
        // questions/s (BENCHMARKS.md, 2026-12-01). Since consent checks are queued
        // (`check_queue.rs`) the database changes about once a second, but a mapped file (2 GB,
        // SQLite's limit) with a 16 MiB cache still used no less CPU per question (BENCHMARKS.md,
        // 2026-12-01 afternoon): the lookups' leaves are random pages of an 11 GB file.
        conn.execute_batch("PRAGMA mmap_size = 0;")?;
        Ok(conn)
    }
}

fn read(conn: &Connection, pseudonym: &[u8], sides: &Sides) -> Result<Vec<Answer>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        answer_columns!(),
        " FROM answers WHERE superseded_at IS NULL AND citizen_id = ",
        "(SELECT id FROM citizens WHERE bsn_pseudonym = ?1) ",
        "AND ((holder_kind = ?2 AND holder_code = ?3) OR (holder_kind = ?4 AND holder_code = ?5)) ",
        "AND ((consulter_kind = ?6 AND consulter_code = ?7) OR (consulter_kind = ?8 AND consulter_code = ?9))"
    ))?;
    let [hk0, hc0, hk1, hc1, ck0, cc0, ck1, cc1] = codec::sides_params(sides);
    let mut rows = statement.query(rusqlite::params![
        pseudonym, hk0, hc0, hk1, hc1, ck0, cc0, ck1, cc1
    ])?;
    let mut answers = Vec::new();
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> Result<&str> {
            r.get_ref(i)?
                .as_str()
                .map_err(|_| codec::corrupt("answers (text column)"))
        };
        answers.push(
            AnswerCols {
                holder_kind: text(0)?,
                holder_code: text(1)?,
                data_category: text(2)?,
                consulter_kind: text(3)?,
                consulter_code: text(4)?,
                effect: text(5)?,
                valid_from: from_epoch_micros(r.get(6)?, "valid_from")?,
                valid_until: r
                    .get::<_, Option<i64>>(7)?
                    .map(|v| from_epoch_micros(v, "valid_until"))
                    .transpose()?,
                state: text(8)?,
                recorded_at: from_epoch_micros(r.get(9)?, "recorded_at")?,
                channel: text(10)?,
                actor: Cow::Borrowed(text(11)?),
                catalogue_version: text(12)?,
            }
            .to_answer()?,
        );
    }
    Ok(answers)
}
