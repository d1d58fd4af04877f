//! Reading one request frame: `[RequestHeader 256 B][body]`.
//!
//! The declared size is checked against the limit *before* the body is
//! allocated, so an oversize or garbage length costs nothing but the
//! connection that sent it.

use crate::buffers::read_appending;
use bytes::BytesMut;
use iggy_binary_protocol::codes::{LOGIN_REGISTER_CODE, LOGOUT_USER_CODE};
use iggy_binary_protocol::consensus::{
    ConsensusHeader, HEADER_SIZE, Operation, RequestHeader, read_size_field,
};
use std::io;
use tokio::io::AsyncRead;

/// A decoded request header and the command code it carries. The body stays
/// in the read buffer, after the header (`buf[HEADER_SIZE..]`).
pub struct RequestFrame {
    pub header: RequestHeader,
    pub code: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("malformed request header: {0}")]
    Malformed(String),
}

/// Command code of a request: non-replicated reads carry the legacy code in
/// the first reserved bytes; other operations map one-to-one to a code.
fn command_code(header: &RequestHeader) -> Result<u32, FrameError> {
    match header.operation {
        Operation::NonReplicated => Ok(u32::from_le_bytes(
            header.reserved[0..4].try_into().expect("4 bytes"),
        )),
        // Register covers both login kinds; the body tells them apart.
        Operation::Register => Ok(LOGIN_REGISTER_CODE),
        Operation::Logout => Ok(LOGOUT_USER_CODE),
        op => op.to_command_code().ok_or_else(|| {
            FrameError::Malformed(format!("operation {op:?} is not a client operation"))
        }),
    }
}

/// Read one frame into `buf`, which is reused between calls (no allocation
/// per request once it has grown to the connection's working size).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<RequestFrame, FrameError> {
    buf.clear();
    match read_appending(reader, buf, HEADER_SIZE).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size = read_size_field(buf).expect("header is 256 bytes") as usize;
    if size < HEADER_SIZE {
        return Err(FrameError::Malformed(format!(
            "declared frame size {size} is smaller than the header"
        )));
    }
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    let header: RequestHeader = bytemuck::checked::try_pod_read_unaligned(&buf[..HEADER_SIZE])
        .map_err(|e| FrameError::Malformed(format!("not a request header: {e}")))?;
    header
        .validate()
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if header.release != 0 {
        return Err(FrameError::Malformed("release must be 0".into()));
    }
    let code = command_code(&header)?;
    read_appending(reader, buf, size - HEADER_SIZE).await?;
    Ok(RequestFrame { header, code })
}
