use tokio::io::{AsyncBufRead, AsyncBufReadExt};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The line is in the buffer, without its `\n`.
    Complete,
    /// The line was longer than the limit and has been skipped.
    TooLong { len: usize },
}

/// Reads newline-terminated lines of at most `max` bytes, so that one huge
/// line cannot exhaust memory and a skipped line does not end the stream
/// (unlike a codec, which stops at its first error). No UTF-8 check: that is
/// the JSON parser's business.
pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// `None` at end of input. A final line without `\n` is still returned.
    pub(crate) async fn next(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
        buf.clear();
        let mut len = 0usize;
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                return Ok((len > 0).then(|| self.outcome(len)));
            }
            let (taken, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (chunk.len(), false),
            };
            len += taken;
            if len <= self.max {
                buf.extend_from_slice(&chunk[..taken]);
            } else {
                buf.clear();
            }
            self.inner.consume(taken + usize::from(done));
            if done {
                return Ok(Some(self.outcome(len)));
            }
        }
    }

    fn outcome(&self, len: usize) -> Line {
        if len <= self.max {
            Line::Complete
        } else {
            Line::TooLong { len }
        }
    }
}

#[cfg(test)]
mod tests {
    use csp_testkit::proptest_config;
    use proptest::prelude::*;
    use tokio::io::BufReader;

    use super::*;

    async fn read_all(input: &[u8], max: usize, capacity: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut reader = LineReader::new(BufReader::with_capacity(capacity, input), max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = reader.next(&mut buf).await.unwrap() {
            out.push(match line {
                Line::Complete => Ok(buf.clone()),
                Line::TooLong { len } => Err(len),
            });
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_skips_long_ones_without_stopping() {
        let input = b"{\"a\":1}\n0123456789abc\n\nlast";
        let lines = read_all(input, 10, 4).await;
        assert_eq!(
            lines,
            [
                Ok(b"{\"a\":1}".to_vec()),
                Err(13),
                Ok(Vec::new()),
                Ok(b"last".to_vec())
            ]
        );
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn matches_a_plain_split(
            input in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
            max in 0usize..40,
            capacity in 1usize..16,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let lines = runtime.block_on(read_all(&input, max, capacity));
            let mut expected: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if input.last().is_none_or(|&b| b == b'\n') {
                expected.pop();
            }
            let expected: Vec<Result<Vec<u8>, usize>> = expected
                .into_iter()
                .map(|line| if line.len() <= max { Ok(line.to_vec()) } else { Err(line.len()) })
                .collect();
            prop_assert_eq!(lines, expected);
        }
    }
}
