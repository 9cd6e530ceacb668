//! Reads a WAV header from a stream that cannot seek, up to the first sample.
//!
//! Chunks before `data` other than `fmt ` and `ds64` are read past, never stored. A data
//! length of 0 or 0xFFFFFFFF (what live writers put when they do not know it yet) means
//! "until the end of the stream"; RF64 takes its length from `ds64`. Every size a header
//! gives is checked before anything is allocated for it.

use std::io::{self, Read};

use super::{PcmError, PcmSpec, SampleFormat};

/// The longest `fmt ` or `ds64` chunk taken (WAVE_FORMAT_EXTENSIBLE is 40 bytes).
const MAX_META_CHUNK: u32 = 1024;
/// `WAVE_FORMAT_EXTENSIBLE`: the real tag is the start of the sub-format GUID.
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// What the header says about the samples that follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WavHeader {
    pub(super) spec: PcmSpec,
    /// Bytes of samples, `None` when the stream runs to its end.
    pub(super) data_len: Option<u64>,
}

/// Reads the header from `reader`, leaving it at the first sample byte.
pub(super) fn read(reader: &mut impl Read) -> Result<WavHeader, PcmError> {
    let mut riff = [0u8; 12];
    read_exact(reader, &mut riff)?;
    let rf64 = match &riff[..4] {
        b"RIFF" => false,
        b"RF64" => true,
        _ => return Err(PcmError::NotWav),
    };
    if &riff[8..] != b"WAVE" {
        return Err(PcmError::NotWav);
    }
    let mut spec = None;
    let mut ds64_data_len = None;
    loop {
        let mut head = [0u8; 8];
        read_exact(reader, &mut head)?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        match &head[..4] {
            b"fmt " => spec = Some(parse_fmt(&read_meta(reader, len)?)?),
            b"ds64" => {
                let ds64 = read_meta(reader, len)?;
                let data_len = ds64
                    .get(8..16)
                    .ok_or(PcmError::BadHeader("ds64 chunk too short"))?;
                ds64_data_len = Some(u64::from_le_bytes(data_len.try_into().expect("8 bytes")));
            }
            b"data" => {
                let spec = spec.ok_or(PcmError::BadHeader("data chunk before fmt chunk"))?;
                let data_len = match len {
                    0xFFFF_FFFF if rf64 => ds64_data_len,
                    0 | 0xFFFF_FFFF => None,
                    len => Some(u64::from(len)),
                };
                return Ok(WavHeader { spec, data_len });
            }
            _ => skip(reader, u64::from(len) + u64::from(len % 2))?,
        }
    }
}

/// Reads a small chunk whole (and its pad byte).
fn read_meta(reader: &mut impl Read, len: u32) -> Result<Vec<u8>, PcmError> {
    if len > MAX_META_CHUNK {
        return Err(PcmError::BadHeader("fmt or ds64 chunk over 1 KiB"));
    }
    let mut buf = vec![0u8; (len + len % 2) as usize];
    read_exact(reader, &mut buf)?;
    buf.truncate(len as usize);
    Ok(buf)
}

fn parse_fmt(fmt: &[u8]) -> Result<PcmSpec, PcmError> {
    if fmt.len() < 16 {
        return Err(PcmError::BadHeader("fmt chunk shorter than 16 bytes"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([fmt[at], fmt[at + 1]]);
    let mut tag = u16_at(0);
    let channels = u16_at(2);
    let sample_rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let block_align = u16_at(12);
    let bits = u16_at(14);
    if tag == TAG_EXTENSIBLE {
        if fmt.len() < 26 {
            return Err(PcmError::BadHeader("extensible fmt chunk too short"));
        }
        tag = u16_at(24);
    }
    let format = match (tag, bits) {
        (1, 8) => SampleFormat::U8,
        (1, 16) => SampleFormat::S16Le,
        (1, 24) => SampleFormat::S24Le,
        (1, 32) => SampleFormat::S32Le,
        (3, 32) => SampleFormat::F32Le,
        (tag, bits) => return Err(PcmError::UnsupportedEncoding { tag, bits }),
    };
    let spec = PcmSpec {
        format,
        sample_rate,
        channels,
    };
    spec.check()?;
    if usize::from(block_align) != spec.frame_bytes() {
        return Err(PcmError::BadHeader(
            "block align is not channels x bytes per sample",
        ));
    }
    Ok(spec)
}

/// Reads past `len` bytes without keeping them.
fn skip(reader: &mut impl Read, len: u64) -> Result<(), PcmError> {
    let skipped = io::copy(&mut reader.take(len), &mut io::sink())?;
    if skipped < len {
        return Err(PcmError::HeaderEnded);
    }
    Ok(())
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), PcmError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => PcmError::HeaderEnded,
        _ => PcmError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with `fmt` (PCM 16-bit), a LIST chunk, and a data chunk of `data_len`.
    fn header(channels: u16, rate: u32, data_len: u32) -> Vec<u8> {
        let mut h = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
        h.extend(b"fmt \x10\0\0\0\x01\0");
        h.extend(channels.to_le_bytes());
        h.extend(rate.to_le_bytes());
        h.extend(rate.wrapping_mul(2 * u32::from(channels)).to_le_bytes());
        h.extend(channels.wrapping_mul(2).to_le_bytes());
        h.extend(16u16.to_le_bytes());
        h.extend(b"LIST\x03\0\0\0abc\0");
        h.extend(b"data");
        h.extend(data_len.to_le_bytes());
        h
    }

    #[test]
    fn live_headers_read_to_the_first_sample() {
        let mut bytes = header(2, 48_000, 0xFFFF_FFFF);
        bytes.extend([1, 2]);
        let mut reader = bytes.as_slice();
        let h = read(&mut reader).expect("header");
        assert_eq!(h.spec.sample_rate, 48_000);
        assert_eq!((h.spec.channels, h.spec.format), (2, SampleFormat::S16Le));
        assert_eq!(h.data_len, None);
        assert_eq!(reader, [1, 2]);
        let h = read(&mut header(1, 8000, 6).as_slice()).expect("header");
        assert_eq!(h.data_len, Some(6));
    }

    #[test]
    fn impossible_headers_are_refused_without_allocating() {
        let bad = |bytes: &[u8]| read(&mut &bytes[..]).expect_err("refused");
        assert!(matches!(bad(b"OggS\0\0\0\0WAVE"), PcmError::NotWav));
        assert!(matches!(
            bad(&header(0xFFFF, 48_000, 0)),
            PcmError::Channels(0xFFFF)
        ));
        assert!(matches!(bad(&header(1, 0, 0)), PcmError::SampleRate(0)));
        assert!(matches!(
            bad(&header(1, 16_000, 0)[..30]),
            PcmError::HeaderEnded
        ));
        // A fmt chunk claiming 4 GiB.
        let mut huge = b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff".to_vec();
        huge.extend([0; 64]);
        assert!(matches!(bad(&huge), PcmError::BadHeader(_)));
        // A chunk to skip that claims 4 GiB in a short stream.
        let mut skip = b"RIFF\0\0\0\0WAVEjunk\xff\xff\xff\xff".to_vec();
        skip.extend([0; 64]);
        assert!(matches!(bad(&skip), PcmError::HeaderEnded));
        let mut adpcm = header(1, 16_000, 0);
        adpcm[20] = 2;
        assert!(matches!(
            bad(&adpcm),
            PcmError::UnsupportedEncoding { tag: 2, bits: 16 }
        ));
    }
}
