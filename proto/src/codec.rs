//! The codec every generated client and server uses: prost's, except that a
//! message that cannot be decoded (invalid UTF-8 in a string, nesting past
//! prost's limit of 100, a truncated field) is `INVALID_ARGUMENT` naming the
//! problem, not `INTERNAL`: it is the sender's mistake, and a caller must be
//! able to tell it from a server failure.

use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct AmonCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Codec for AmonCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = AmonDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        AmonDecoder(self.0.decoder())
    }
}

/// prost's decoder, with undecodable input reported as the sender's mistake.
#[derive(Debug, Clone)]
pub struct AmonDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for AmonDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            if status.code() == Code::Internal {
                Status::invalid_argument(format!(
                    "the message could not be decoded: {}",
                    status.message()
                ))
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
