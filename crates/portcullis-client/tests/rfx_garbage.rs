//! A server's RemoteFX bytes, damaged every way a fuzzer would: the RFX path
//! of the session (IronRDP's block parser, the vendored `ironrdp-session`'s
//! decoding context, portcullis-rfx's tile decoder) gives a frame or an
//! error, never a panic, and keeps working for the next, sound frame.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::ReadCursor;
use ironrdp_pdu::codecs::rfx::{
    Block, ChannelsPdu, CodecChannel, CodecVersionsPdu, ContextPdu, EntropyAlgorithm,
    FrameBeginPdu, FrameEndPdu, OperatingMode, Quant, RegionPdu, RfxChannel, RfxRectangle, SyncPdu,
    Tile, TileSetPdu,
};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::rfx::DecodingContext;
use portcullis_rfx::sample::{QUANT, encode_tile};

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn encode(blocks: &[Block<'_>]) -> Vec<u8> {
    blocks
        .iter()
        .flat_map(|block| ironrdp_core::encode_vec(block).expect("encode an RFX block"))
        .collect()
}

/// A sound stream for a 128×128 desktop: the headers, then a frame of four
/// real tiles (a gradient, stripes, flat colours), its region the whole desktop.
fn sound_stream(noise: &mut Noise) -> Vec<u8> {
    let whole_desktop = RfxRectangle {
        x: 0,
        y: 0,
        width: 128,
        height: 128,
    };
    stream(noise, vec![whole_desktop], |i| {
        ((i % 2) as u16, (i / 2) as u16)
    })
}

/// The headers for a 128×128 channel, then a frame of four real tiles at
/// `tile_at(i)` (in tiles), its region `rectangles`.
fn stream(
    noise: &mut Noise,
    rectangles: Vec<RfxRectangle>,
    tile_at: impl Fn(usize) -> (u16, u16),
) -> Vec<u8> {
    let pictures: Vec<Vec<u8>> = (0..4)
        .map(|t| {
            let seed = noise.next();
            (0..64 * 64)
                .flat_map(|p| {
                    let (x, y) = (p % 64, p / 64);
                    let v = match t {
                        0 => (x * 4) as u8,
                        1 => {
                            if (y + seed as usize) % 6 < 3 {
                                0x20
                            } else {
                                0xe0
                            }
                        }
                        _ => seed as u8,
                    };
                    [v, v.wrapping_add(y as u8), 0x80, 0xff]
                })
                .collect()
        })
        .collect();
    let encoded: Vec<[Vec<u8>; 3]> = pictures
        .iter()
        .map(|rgba| encode_tile(rgba, &QUANT, EntropyAlgorithm::Rlgr3))
        .collect();
    let tiles: Vec<Tile<'_>> = encoded
        .iter()
        .enumerate()
        .map(|(i, data)| Tile {
            y_quant_index: 0,
            cb_quant_index: 0,
            cr_quant_index: 0,
            x: tile_at(i).0,
            y: tile_at(i).1,
            y_data: &data[0],
            cb_data: &data[1],
            cr_data: &data[2],
        })
        .collect();
    encode(&[
        Block::Sync(SyncPdu),
        Block::CodecVersions(CodecVersionsPdu),
        Block::Channels(ChannelsPdu(vec![RfxChannel {
            width: 128,
            height: 128,
        }])),
        Block::CodecChannel(CodecChannel::Context(ContextPdu {
            flags: OperatingMode::empty(),
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
        })),
        Block::CodecChannel(CodecChannel::FrameBegin(FrameBeginPdu {
            index: 0,
            number_of_regions: 1,
        })),
        Block::CodecChannel(CodecChannel::Region(RegionPdu { rectangles })),
        Block::CodecChannel(CodecChannel::TileSet(TileSetPdu {
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
            quants: vec![QUANT, Quant::default()],
            tiles,
        })),
        Block::CodecChannel(CodecChannel::FrameEnd(FrameEndPdu)),
    ])
}

/// One way of damaging `bytes`, as a fuzzer mutates.
fn damage(bytes: &mut Vec<u8>, noise: &mut Noise) {
    for _ in 0..1 + noise.below(4) {
        let len = bytes.len().max(1);
        match noise.below(6) {
            // A flipped bit.
            0 => {
                let at = noise.below(len).min(bytes.len().saturating_sub(1));
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << noise.below(8);
                }
            }
            // A random byte.
            1 => {
                let at = noise.below(len).min(bytes.len().saturating_sub(1));
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = noise.next() as u8;
                }
            }
            // A length or count field's extremes: 16 or 32 bits of 0x00 or 0xff.
            2 => {
                let at = noise.below(len);
                let fill = if noise.below(2) == 0 { 0x00 } else { 0xff };
                for byte in bytes.iter_mut().skip(at).take(2 + 2 * noise.below(2)) {
                    *byte = fill;
                }
            }
            // Cut short.
            3 => bytes.truncate(noise.below(len)),
            // Random bytes put in.
            4 => {
                let at = noise.below(len).min(bytes.len());
                let extra: Vec<u8> = (0..1 + noise.below(16))
                    .map(|_| noise.next() as u8)
                    .collect();
                bytes.splice(at..at, extra);
            }
            // A stretch cut out.
            _ => {
                let at = noise.below(len).min(bytes.len());
                let end = (at + 1 + noise.below(32)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
}

fn whole(width: u16, height: u16) -> InclusiveRectangle {
    InclusiveRectangle {
        left: 0,
        top: 0,
        right: width - 1,
        bottom: height - 1,
    }
}

#[test]
fn damaged_remote_fx_bytes_give_a_frame_or_an_error_never_a_panic() {
    let mut noise = Noise(0x0bad_5eed_f00d_cafe);
    let sound = sound_stream(&mut noise);

    // The sound stream decodes, so the damage below starts from real frames.
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    let mut context = DecodingContext::new();
    context
        .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&sound))
        .expect("the sound stream decodes");

    let (mut decoded, mut refused) = (0, 0);
    for round in 0..2000 {
        let mut bytes = sound.clone();
        damage(&mut bytes, &mut noise);
        // Desktops smaller and larger than the stream's channel.
        let (width, height) = [(128, 128), (64, 64), (200, 96), (1, 1)][round % 4];
        let mut image = DecodedImage::new(PixelFormat::RgbA32, width, height);
        // A fresh context and one that lived through earlier frames.
        let mut fresh = DecodingContext::new();
        for context in [&mut fresh, &mut context] {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                context.decode(
                    &mut image,
                    &whole(width, height),
                    &mut ReadCursor::new(&bytes),
                )
            }));
            match outcome {
                Ok(Ok(_)) => decoded += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("round {round}: a panic on damaged RemoteFX bytes: {bytes:02x?}"),
            }
        }
    }
    // Both outcomes happened, many times over: the damage reached the parser
    // and the tile decoder, not only one of them.
    assert!(
        decoded > 50 && refused > 50,
        "{decoded} decoded, {refused} refused"
    );

    // After all that, the long-lived context still decodes a sound stream.
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    context
        .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&sound))
        .expect("a sound stream after the damaged ones");
}

/// Found by the test above (round 1761): a region rectangle of width 0 made
/// `x + width - 1` underflow (a panic in debug builds; in release builds the
/// rectangle wrapped round to the desktop's right edge), and a tile index past
/// 1023 overflowed its pixel position. Both are now refused quietly: nothing
/// outside the desktop or the region is drawn.
#[test]
fn an_empty_region_rectangle_and_a_tile_far_outside_draw_nothing_and_do_not_panic() {
    let mut noise = Noise(7);
    let empty = RfxRectangle {
        x: 0,
        y: 0,
        width: 0,
        height: 64,
    };
    let far_edge = RfxRectangle {
        x: u16::MAX,
        y: u16::MAX,
        width: u16::MAX,
        height: 1,
    };
    for (rectangles, tile_at) in [
        (
            vec![empty.clone()],
            (|i| ((i % 2) as u16, (i / 2) as u16)) as fn(usize) -> (u16, u16),
        ),
        (vec![empty, far_edge], |i| {
            (2000 + i as u16, u16::MAX - i as u16)
        }),
    ] {
        let bytes = stream(&mut noise, rectangles, tile_at);
        let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
        let before = image.data().to_vec();
        DecodingContext::new()
            .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&bytes))
            .expect("a frame that draws nothing");
        assert!(image.data() == before.as_slice(), "no pixel drawn");
    }
}
