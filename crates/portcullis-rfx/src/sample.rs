//! Encoded tiles to test and measure the decoder with, made by IronRDP's own
//! encoder stages; RemoteFX streams as a server sends them; the page of text
//! the RDP benchmark scrolls on the server's display; and timings of whole
//! 1920×1080 frames against IronRDP's tile loop (printed by
//! `cargo xtask bench rdp`).

use std::time::{Duration, Instant};

use ironrdp_graphics::color_conversion::to_64x64_ycbcr_tile;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_graphics::rfx::TileDecoder;
use ironrdp_graphics::{dwt, quantization, rlgr, subband_reconstruction};
use ironrdp_pdu::codecs::rfx::{
    Block, ChannelsPdu, CodecChannel, CodecVersionsPdu, ContextPdu, EntropyAlgorithm,
    FrameBeginPdu, FrameEndPdu, OperatingMode, Quant, RegionPdu, RfxChannel, RfxRectangle, SyncPdu,
    Tile, TileSetPdu,
};

use crate::{FrameDecoder, TILE_PIXELS, TILE_RGBA_LEN, TILE_SIZE};

/// RemoteFX-encodes a 64×64 RGBA picture: the Y, Cb and Cr components' RLGR data.
pub fn encode_tile(rgba: &[u8], quant: &Quant, entropy: EntropyAlgorithm) -> [Vec<u8>; 3] {
    let (mut y, mut cb, mut cr) = ([0i16; 4096], [0i16; 4096], [0i16; 4096]);
    to_64x64_ycbcr_tile(
        rgba,
        64,
        64,
        256,
        PixelFormat::RgbA32,
        &mut y,
        &mut cb,
        &mut cr,
    )
    .expect("a 64×64 RGBA picture converts");
    let mut temp = vec![0i16; TILE_PIXELS];
    [y, cb, cr].map(|mut plane| {
        dwt::encode(&mut plane, &mut temp);
        quantization::encode(&mut plane, quant);
        subband_reconstruction::encode(&mut plane[4032..]);
        let mut data = vec![0u8; TILE_PIXELS * 4];
        let len = rlgr::encode(entropy, &plane, &mut data).expect("a tile fits four bytes a pixel");
        data.truncate(len);
        data
    })
}

/// A small deterministic generator (xorshift) for tests that feed made-up
/// data: a seed gives the same data every run, so a failure reproduces.
pub struct Noise(pub u64);

impl Noise {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A byte from the well-mixed middle of the next value.
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 24) as u8
    }

    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Tiles of `encoded` components (as [`encode_tile`] makes them), tile `i`
/// at `at(i)` (in tiles), all with quantization 0.
pub fn tiles(encoded: &[[Vec<u8>; 3]], at: impl Fn(usize) -> (u16, u16)) -> Vec<Tile<'_>> {
    encoded
        .iter()
        .enumerate()
        .map(|(i, data)| Tile {
            y_quant_index: 0,
            cb_quant_index: 0,
            cr_quant_index: 0,
            x: at(i).0,
            y: at(i).1,
            y_data: &data[0],
            cb_data: &data[1],
            cr_data: &data[2],
        })
        .collect()
}

/// The quantization a server typically sends (the RemoteFX spec's default).
pub const QUANT: Quant = Quant {
    ll3: 6,
    lh3: 6,
    hl3: 6,
    hh3: 6,
    lh2: 7,
    hl2: 7,
    hh2: 8,
    lh1: 8,
    hl1: 8,
    hh1: 9,
};

/// Tile `i` of a desktop-like picture: flat colour, text-like stripes,
/// gradients. No two tiles are alike, so every one is decoded (the decoder
/// copies a tile coded like an earlier one of its frame).
fn desktop_tile(i: usize) -> Vec<u8> {
    let mut rgba = vec![0u8; TILE_RGBA_LEN];
    let n = i / 3;
    for (p, pixel) in rgba.chunks_exact_mut(4).enumerate() {
        let (x, y) = (p % TILE_SIZE, p / TILE_SIZE);
        let (r, g, b) = match i % 3 {
            0 => (0x20, 0x60, (0x40 + n) as u8),
            1 if ((y + n) / 2).is_multiple_of(4) && (x * 7 + y + n) % 5 < 3 => {
                (0x10, (n % 64) as u8, 0x10)
            }
            1 => (0xf0, 0xf0, 0xf0),
            _ => ((x * 4 + n) as u8, (y * 4) as u8, ((x + y) * 2) as u8),
        };
        pixel.copy_from_slice(&[r, g, b, 0xff]);
    }
    rgba
}

/// The text page's character cell (width, height), paper and ink colours.
pub const TEXT_CELL: (u16, u16) = (9, 16);
pub const TEXT_PAPER: [u8; 3] = [0xf4, 0xf4, 0xf0];
pub const TEXT_INK: [u8; 3] = [0x20, 0x24, 0x2c];

/// The glyph at `column` of screen row `row` when the screen shows the page
/// from `line` on: a box of ink (x, y, width, height in pixels), or `None`
/// for a blank cell (one in five). Glyph boxes of varying heights in 9×16
/// cells look to a codec as dense terminal text does (edges everywhere);
/// the RDP benchmark draws them on the server's display.
pub fn text_glyph(row: u16, column: u16, line: usize) -> Option<[u16; 4]> {
    // A fixed pseudo-random page; scrolling shows the next line of it.
    let mut hash = (u64::from(row) + line as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(column).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    hash ^= hash >> 29;
    if hash.is_multiple_of(5) {
        return None;
    }
    let height = 6 + u16::try_from((hash >> 8) % 5).expect("below 5");
    Some([
        column * TEXT_CELL.0 + 1,
        row * TEXT_CELL.1 + 13 - height,
        6,
        height,
    ])
}

/// A `width`×`height` RGBA picture of the text page from `line` on: every
/// whole row of cells, paper below.
pub fn text_page(width: u16, height: u16, line: usize) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut rgba = Vec::with_capacity(w * h * 4);
    for _ in 0..w * h {
        rgba.extend_from_slice(&TEXT_PAPER);
        rgba.push(0xff);
    }
    for row in 0..height / TEXT_CELL.1 {
        for column in 0..width / TEXT_CELL.0 {
            let Some([x, y, gw, gh]) = text_glyph(row, column, line) else {
                continue;
            };
            for py in usize::from(y)..usize::from(y + gh) {
                for px in usize::from(x)..usize::from(x + gw) {
                    rgba[(py * w + px) * 4..][..3].copy_from_slice(&TEXT_INK);
                }
            }
        }
    }
    rgba
}

/// A tile's position (in tiles, across and down) and its coded components.
pub type PlacedTile = ((u16, u16), [Vec<u8>; 3]);

/// RemoteFX-encodes a `width`×`height` RGBA picture under [`QUANT`]: its
/// tiles row after row, each 64×64 (the right and bottom edges repeat the
/// picture's last column and row where a tile passes them), with their
/// positions in tiles.
pub fn encode_picture(
    rgba: &[u8],
    width: u16,
    height: u16,
    entropy: EntropyAlgorithm,
) -> Vec<PlacedTile> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut encoded = Vec::new();
    let mut tile = vec![0u8; TILE_RGBA_LEN];
    for ty in 0..h.div_ceil(TILE_SIZE) {
        for tx in 0..w.div_ceil(TILE_SIZE) {
            for (i, pixel) in tile.chunks_exact_mut(4).enumerate() {
                let x = (tx * TILE_SIZE + i % TILE_SIZE).min(w - 1);
                let y = (ty * TILE_SIZE + i / TILE_SIZE).min(h - 1);
                pixel.copy_from_slice(&rgba[(y * w + x) * 4..][..4]);
            }
            let at = (
                u16::try_from(tx).expect("under 2^16 tiles"),
                u16::try_from(ty).expect("under 2^16 tiles"),
            );
            encoded.push((at, encode_tile(&tile, &QUANT, entropy)));
        }
    }
    encoded
}

/// Tiles of `encoded` (as [`encode_picture`] makes them) at their positions,
/// all with quantization 0, borrowing the coded data.
pub fn placed_tiles(encoded: &[PlacedTile]) -> Vec<Tile<'_>> {
    encoded
        .iter()
        .map(|&((x, y), ref data)| Tile {
            y_quant_index: 0,
            cb_quant_index: 0,
            cr_quant_index: 0,
            x,
            y,
            y_data: &data[0],
            cb_data: &data[1],
            cr_data: &data[2],
        })
        .collect()
}

/// RemoteFX blocks as bytes, as they arrive in a surface command.
pub fn stream(blocks: &[Block<'_>]) -> Vec<u8> {
    blocks
        .iter()
        .flat_map(|block| ironrdp_core::encode_vec(block).expect("encode an RFX block"))
        .collect()
}

/// What a server sends first: sync, versions, one channel of `width`×`height`,
/// the codec context (RLGR3).
pub fn stream_headers(width: i16, height: i16) -> Vec<u8> {
    stream(&[
        Block::Sync(SyncPdu),
        Block::CodecVersions(CodecVersionsPdu),
        Block::Channels(ChannelsPdu(vec![RfxChannel { width, height }])),
        Block::CodecChannel(CodecChannel::Context(ContextPdu {
            flags: OperatingMode::empty(),
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
        })),
    ])
}

/// Frame `index`: its region `rectangles`, then `tiles` quantized by `quants`.
pub fn stream_frame(
    index: u32,
    rectangles: Vec<RfxRectangle>,
    quants: Vec<Quant>,
    tiles: Vec<Tile<'_>>,
) -> Vec<u8> {
    stream(&[
        Block::CodecChannel(CodecChannel::FrameBegin(FrameBeginPdu {
            index,
            number_of_regions: 1,
        })),
        Block::CodecChannel(CodecChannel::Region(RegionPdu { rectangles })),
        Block::CodecChannel(CodecChannel::TileSet(TileSetPdu {
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
            quants,
            tiles,
        })),
        Block::CodecChannel(CodecChannel::FrameEnd(FrameEndPdu)),
    ])
}

/// Median milliseconds to decode one 1920×1080 frame (510 tiles):
/// IronRDP's `TileDecoder` tile after tile, [`FrameDecoder`] on one thread,
/// and on the machine's cores; and the frame's size. Checks all three give
/// the same pixels.
pub struct FrameTimes {
    pub ironrdp_ms: f64,
    pub one_thread_ms: f64,
    pub all_cores_ms: f64,
    pub cores: usize,
    /// Bytes of entropy-coded data in the frame.
    pub bytes: usize,
}

/// Times [`FrameTimes`] over `rounds` frames of desktop-like tiles (a third
/// flat, a third text-like stripes, a third gradients).
pub fn time_full_hd_frame(rounds: usize) -> FrameTimes {
    let entropy = EntropyAlgorithm::Rlgr3;
    // 30 × 17 tiles cover 1920×1088.
    let encoded: Vec<_> = (0..510u16)
        .map(|i| {
            let tile = encode_tile(&desktop_tile(usize::from(i)), &QUANT, entropy);
            ((i % 30, i / 30), tile)
        })
        .collect();
    time_frame(&encoded, rounds)
}

/// Times [`FrameTimes`] over `rounds` frames of the text page (every tile
/// detailed: the costliest frame a desktop commonly sends).
pub fn time_full_hd_text(rounds: usize) -> FrameTimes {
    let page = text_page(1920, 1080, 0);
    time_frame(
        &encode_picture(&page, 1920, 1080, EntropyAlgorithm::Rlgr3),
        rounds,
    )
}

fn time_frame(encoded: &[PlacedTile], rounds: usize) -> FrameTimes {
    let entropy = EntropyAlgorithm::Rlgr3;
    let tiles = placed_tiles(encoded);
    let quants = [QUANT];
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64() * 1000.0
    };
    let mut reference = TileDecoder::new();
    let mut expected = vec![0u8; tiles.len() * TILE_RGBA_LEN];
    let mut ironrdp = Vec::with_capacity(rounds);
    let mut one = Vec::with_capacity(rounds);
    let mut all = Vec::with_capacity(rounds);
    let mut single = FrameDecoder::with_threads(1);
    let mut parallel = FrameDecoder::new();
    // Interleaved, so a slow patch of the machine falls on all three alike.
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        for (tile, out) in tiles.iter().zip(expected.chunks_exact_mut(TILE_RGBA_LEN)) {
            out.copy_from_slice(reference.decode(tile, &quants, entropy).expect("decodes"));
        }
        ironrdp.push(started.elapsed());
        for (decoder, times) in [(&mut single, &mut one), (&mut parallel, &mut all)] {
            let started = Instant::now();
            let pixels = decoder.decode(&tiles, &quants, entropy).expect("decodes");
            times.push(started.elapsed());
            assert!(pixels == expected.as_slice(), "the same pixels as IronRDP");
        }
    }
    FrameTimes {
        ironrdp_ms: median(ironrdp),
        one_thread_ms: median(one),
        all_cores_ms: median(all),
        cores: parallel.threads,
        bytes: encoded
            .iter()
            .flat_map(|(_, data)| data)
            .map(Vec::len)
            .sum(),
    }
}
