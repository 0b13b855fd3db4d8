//! Bounds on what an API server's answers may make picket hold: a response body past
//! `MAX_BODY` bytes, or a watch line past `MAX_WATCH_LINE` (watches are streams: their total is
//! unbounded, each event is not), ends the request with an error instead of growing memory
//! until the process dies. A tower layer on the kube client's stack.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A list page (`limit=500`) of the largest objects is a few tens of MB.
pub const MAX_BODY: u64 = 128 * 1024 * 1024;
/// One watch event: one object.
pub const MAX_WATCH_LINE: u64 = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct TooLarge {
    pub limit: u64,
    pub watch: bool,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.watch {
            true => write!(f, "a watch event from the API server is over {} MiB", self.limit >> 20),
            false => write!(f, "the API server's response is over {} MiB", self.limit >> 20),
        }
    }
}

impl std::error::Error for TooLarge {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that fails once it has given `limit` bytes (in all, or since its last newline).
pub struct CappedBody<B> {
    inner: B,
    limit: u64,
    per_line: bool,
    seen: u64,
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            this.seen = match (this.per_line, data.iter().rposition(|b| *b == b'\n')) {
                (true, Some(last)) => (data.len() - last - 1) as u64,
                _ => this.seen + data.len() as u64,
            };
            if this.seen > this.limit {
                return Poll::Ready(Some(Err(Box::new(TooLarge { limit: this.limit, watch: this.per_line }))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CapLayer;

impl<S> tower::Layer<S> for CapLayer {
    type Service = Cap<S>;
    fn layer(&self, inner: S) -> Cap<S> {
        Cap { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Cap<S> {
    inner: S,
}

fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

impl<S, ReqBody, B> tower::Service<http::Request<ReqBody>> for Cap<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<CappedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let per_line = is_watch(request.uri());
        let limit = if per_line { MAX_WATCH_LINE } else { MAX_BODY };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| CappedBody { inner, limit, per_line, seen: 0 }))
        })
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn chunks(
        parts: Vec<&'static [u8]>,
    ) -> http_body_util::StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>>> {
        http_body_util::StreamBody::new(futures::stream::iter(
            parts.into_iter().map(|p| Ok(Frame::data(Bytes::from_static(p)))),
        ))
    }

    #[tokio::test]
    async fn bodies_past_the_cap_fail_and_watch_lines_are_capped_one_by_one() {
        let whole = CappedBody { inner: chunks(vec![b"12345", b"67890"]), limit: 8, per_line: false, seen: 0 };
        let err = whole.collect().await.expect_err("over 8 bytes");
        assert_eq!(err.to_string(), "the API server's response is over 0 MiB");
        let fits = CappedBody { inner: chunks(vec![b"1234", b"5678"]), limit: 8, per_line: false, seen: 0 };
        assert_eq!(fits.collect().await.expect("8 bytes fit").to_bytes(), "12345678");
        // A stream of short lines goes on however long it is; one long line does not.
        let lines =
            CappedBody { inner: chunks(vec![b"abc\nde", b"f\nghi\n", b"jk\n"]), limit: 4, per_line: true, seen: 0 };
        assert_eq!(lines.collect().await.expect("short lines").to_bytes(), "abc\ndef\nghi\njk\n");
        let long = CappedBody { inner: chunks(vec![b"ab\ncd", b"efg"]), limit: 4, per_line: true, seen: 0 };
        assert!(long.collect().await.is_err());
        assert!(is_watch(&"/api/v1/pods?watch=true&resourceVersion=1".parse().unwrap()));
        assert!(!is_watch(&"/api/v1/pods?limit=500".parse().unwrap()));
    }
}
