//! `amon logs`: an execution's output, raw.

use amon_proto::v1::StreamLogsRequest;
use clap::Args;

use crate::{client::Ctx, output, resolve};

/// `amon logs`.
#[derive(Debug, Args)]
#[command(after_help = "\
The bytes are written to standard output exactly as the child wrote them: no
newline is added and --json does not apply. Resume an interrupted download with
--from set to the number of bytes already received.")]
pub struct LogsArgs {
    /// Execution id or id prefix.
    pub execution: String,
    /// Keep streaming live output until the execution has finished.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// First byte to send (0: the whole log).
    #[arg(long, value_name = "OFFSET", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub from: i64,
}

/// Where log bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Standard output (the data of the command).
    Stdout,
    /// Standard error (when stdout carries JSON).
    Stderr,
}

impl Sink {
    fn write(self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => output::raw(bytes),
            Sink::Stderr => {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                err.write_all(bytes)?;
                err.flush()
            }
        }
    }
}

/// Keeps the output exact across chunks: bytes before the next expected
/// offset (a chunk sent twice, or overlapping after a reconnect) are
/// dropped.
#[derive(Debug)]
pub struct Cursor {
    next: i64,
}

impl Cursor {
    /// A cursor expecting byte `offset` first.
    pub fn new(offset: i64) -> Self {
        Self { next: offset }
    }

    /// The offset of the next byte expected.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The part of a chunk at `offset` not yet written.
    pub fn accept<'a>(&mut self, offset: i64, data: &'a [u8]) -> &'a [u8] {
        let end = offset.saturating_add(data.len() as i64);
        if end <= self.next {
            return &[];
        }
        let skip = usize::try_from(self.next.saturating_sub(offset)).unwrap_or(0);
        self.next = end;
        &data[skip.min(data.len())..]
    }
}

/// Streams the log of `execution_id` from `cursor` to `sink` until the
/// server ends the stream.
pub async fn stream(
    ctx: &Ctx,
    execution_id: &str,
    cursor: &mut Cursor,
    follow: bool,
    sink: Sink,
) -> anyhow::Result<()> {
    let mut stream = ctx
        .executions()
        .stream_logs(StreamLogsRequest {
            execution_id: execution_id.to_string(),
            offset: cursor.next(),
            follow,
        })
        .await?
        .into_inner();
    while let Some(chunk) = stream.message().await? {
        let fresh = cursor.accept(chunk.offset, &chunk.data);
        if !fresh.is_empty() {
            sink.write(fresh)?;
        }
    }
    Ok(())
}

/// Runs `amon logs`.
pub async fn run(ctx: &Ctx, args: LogsArgs) -> anyhow::Result<()> {
    let id = resolve::execution_id(ctx, &args.execution).await?;
    let mut cursor = Cursor::new(args.from);
    stream(ctx, &id, &mut cursor, args.follow, Sink::Stdout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_passes_consecutive_chunks() {
        let mut c = Cursor::new(0);
        assert_eq!(c.accept(0, b"hello "), b"hello ");
        assert_eq!(c.accept(6, b"world"), b"world");
        assert_eq!(c.next(), 11);
    }

    #[test]
    fn cursor_drops_bytes_already_written() {
        let mut c = Cursor::new(0);
        c.accept(0, b"abcdef");
        assert_eq!(c.accept(0, b"abcdef"), b"");
        assert_eq!(c.accept(4, b"efgh"), b"gh");
        assert_eq!(c.next(), 8);
        assert_eq!(c.accept(8, b""), b"");
    }

    #[test]
    fn cursor_starts_at_an_offset() {
        let mut c = Cursor::new(5);
        assert_eq!(c.accept(0, b"0123456789"), b"56789");
        // A gap (bytes the server never sent) cannot be filled: pass what comes.
        assert_eq!(c.accept(20, b"xy"), b"xy");
        assert_eq!(c.next(), 22);
    }
}
