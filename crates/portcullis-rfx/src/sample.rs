//! Encoded tiles to test and measure the decoder with, made by IronRDP's own
//! encoder stages, and a timing of a whole 1920×1080 frame against IronRDP's
//! tile loop (printed by `cargo xtask bench rdp`).

use std::time::{Duration, Instant};

use ironrdp_graphics::color_conversion::to_64x64_ycbcr_tile;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_graphics::rfx::TileDecoder;
use ironrdp_graphics::{dwt, quantization, rlgr, subband_reconstruction};
use ironrdp_pdu::codecs::rfx::{EntropyAlgorithm, Quant, Tile};

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

/// Median milliseconds to decode one 1920×1080 frame (510 tiles):
/// IronRDP's `TileDecoder` tile after tile, [`FrameDecoder`] on one thread,
/// and on the machine's cores. Checks all three give the same pixels.
pub struct FrameTimes {
    pub ironrdp_ms: f64,
    pub one_thread_ms: f64,
    pub all_cores_ms: f64,
    pub cores: usize,
}

/// Times [`FrameTimes`] over `rounds` frames.
pub fn time_full_hd_frame(rounds: usize) -> FrameTimes {
    let entropy = EntropyAlgorithm::Rlgr3;
    // 30 × 17 tiles cover 1920×1088.
    let encoded: Vec<_> = (0..510)
        .map(|i| encode_tile(&desktop_tile(i), &QUANT, entropy))
        .collect();
    let tiles = tiles(&encoded, |i| {
        (
            u16::try_from(i % 30).expect("small"),
            u16::try_from(i / 30).expect("small"),
        )
    });
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
    }
}
