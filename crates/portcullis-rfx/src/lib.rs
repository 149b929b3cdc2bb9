//! RemoteFX tile decoding, faster than IronRDP's own `TileDecoder` and
//! bit-for-bit the same output.
//!
//! IronRDP decodes a frame's tiles one after another, each stage written for
//! any processor. A full 1920×1080 frame is 510 tiles; decoding them is most
//! of an RDP client's time per frame. Here:
//!
//! - the entropy decoding (`rlgr.rs`) reads each symbol from a 64-bit window
//!   with no branch on the data where IronRDP has several: about 1.8 times
//!   as fast on dense text, where it is most of the time;
//! - the dequantization and inverse DWT (`dwt.rs`) are IronRDP's arithmetic
//!   in loops the compiler vectorizes to the machine's width (the DWT about
//!   twice as fast as IronRDP's with AVX2);
//! - the colour conversion is the same integer arithmetic as the `yuv` crate's
//!   `rdp_yuv444_to_rgba` (which IronRDP calls), written so the compiler
//!   vectorizes it: a pixel is one `u32`, no per-byte stores;
//! - all of it is compiled twice, for the baseline `x86_64` and for AVX2
//!   with BMI2 and LZCNT, and the variant the processor runs is picked at
//!   run time; with AVX-512 a third variant entropy-decodes the components
//!   of a run of tiles eight at a time, one in each lane of a vector
//!   (`rlgr/lanes.rs`: about 2.5 times as fast as one at a time);
//! - the tiles of one frame are decoded on several threads (scoped: they end
//!   before `decode` returns), each taking the next run of 8 tiles until none
//!   is left, when the frame is big enough to pay for the threads (enough
//!   tiles and enough data: a frame of flat tiles stays on one thread);
//! - a component without detail (a solid area) skips the inverse DWT.
//!
//! Each stage is checked against IronRDP's on coded, damaged and random
//! input: the same pixels, the same errors.
//!
//! `sample` makes encoded tiles and RemoteFX streams with IronRDP's encoder
//! (for the tests and the benchmark) and times full HD frames against
//! IronRDP's decoder (for `cargo xtask bench rdp`).
//!
//! The vendored `ironrdp-session` (see `vendor/ironrdp-session/PORTCULLIS.md`)
//! calls [`FrameDecoder::decode_to`] in place of its tile loop: the threads
//! draw the tiles they decode straight into the session's image.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ironrdp_graphics::rfx::RfxDecodeError;
use ironrdp_graphics::subband_reconstruction;
use ironrdp_pdu::codecs::rfx::{EntropyAlgorithm, Quant, Tile};

/// Pixels on a tile's side.
pub const TILE_SIZE: usize = 64;
/// Pixels in a tile.
pub const TILE_PIXELS: usize = TILE_SIZE * TILE_SIZE;
/// Bytes of a decoded tile (RGBA, row after row).
pub const TILE_RGBA_LEN: usize = TILE_PIXELS * 4;

/// Most tiles one [`FrameDecoder::decode`] call takes (16 MiB of pixels, a
/// 2048×2048 area; a 1920×1080 frame is 510 tiles). A frame's tile set may
/// hold up to 65 535 tiles whatever the desktop's size, so callers decode a
/// bigger one in batches of this many, and memory stays bounded.
pub const MAX_BATCH_TILES: usize = 1024;

/// Below this many tiles per thread, a thread costs more than it saves
/// (a tile takes tens of microseconds; starting a thread about as long as one).
const MIN_TILES_PER_THREAD: usize = 24;
/// Below this much entropy-coded data per thread, a frame stays on one thread.
/// Decoding costs about 30 ns a byte plus 4 µs a tile, so 64 KiB is about
/// 2 ms of work. A helper is worth that, not less: on a busy machine (the
/// lab's RDP server shares its 2 cores) a helper waits for a core, and the
/// frame waits for its last tiles. Measured in the RDP benchmark: a solid
/// 1080p frame (510 tiles, 14 KB) took 11.7 ms on two threads there, against
/// 1.9 ms on one thread of a quiet machine.
const MIN_BYTES_PER_THREAD: usize = 64 * 1024;
/// Tiles a thread takes at a time.
const TILES_PER_JOB: usize = 8;
/// No more threads than this, whatever the machine has.
const MAX_THREADS: usize = 8;

/// One thread's working buffers for a tile (and, with AVX-512, for the
/// components of a run of tiles, entropy-decoded together).
#[derive(Clone)]
struct Scratch {
    planes: [Vec<i16>; 3],
    temp: Vec<i16>,
    #[cfg(target_arch = "x86_64")]
    lanes: Lanes,
}

/// The buffers of [`decode_run_avx512`]: a run's components' coefficients
/// ([`rlgr::lanes::STRIDE`] apart), and the lanes' own.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Default)]
struct Lanes {
    coefficients: Vec<i16>,
    scratch: rlgr::lanes::Scratch,
}

impl Scratch {
    fn new() -> Self {
        Self {
            planes: [
                vec![0; TILE_PIXELS],
                vec![0; TILE_PIXELS],
                vec![0; TILE_PIXELS],
            ],
            temp: vec![0; TILE_PIXELS],
            #[cfg(target_arch = "x86_64")]
            lanes: Lanes::default(),
        }
    }
}

/// One thread's buffers: a tile's planes, and the pixels of a run of tiles
/// before they are drawn into a framebuffer.
#[derive(Clone)]
struct Worker {
    scratch: Scratch,
    tiles: Vec<u8>,
}

impl Worker {
    fn new() -> Self {
        Self {
            scratch: Scratch::new(),
            tiles: Vec::new(),
        }
    }
}

/// An RGBA framebuffer that [`FrameDecoder::decode_to`] draws tiles into:
/// rows of `width` pixels, 4 bytes each, one after another.
pub struct Framebuffer<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
}

/// A rectangle of pixels: columns `left..right`, rows `top..bottom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelRect {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

/// Decodes the tiles of RemoteFX frames; keeps its buffers between frames.
pub struct FrameDecoder {
    workers: Vec<Worker>,
    output: Vec<u8>,
    threads: usize,
    /// Threads the last frame was given (the tests look).
    last_threads: usize,
    /// Whether the last frame's tiles went to `decode_each`'s callback as
    /// their runs finished, rather than in order after (the tests look).
    last_streamed: bool,
    /// Whether the last frame's tiles were drawn straight into the
    /// framebuffer by the threads that decoded them (the tests look).
    last_direct: bool,
    /// The pixels of a frame's distinct tiles, when some repeat.
    unique: Vec<u8>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder using up to as many threads as the machine has cores (at most 8).
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::with_threads(cores)
    }

    /// A decoder using at most `threads` threads (1: all on the caller's thread).
    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.clamp(1, MAX_THREADS);
        Self {
            workers: vec![Worker::new(); threads],
            output: Vec::new(),
            threads,
            last_threads: 0,
            last_streamed: false,
            last_direct: false,
            unique: Vec::new(),
        }
    }

    /// Decodes every tile to RGBA: tile `i` is at `i * TILE_RGBA_LEN` of the
    /// answer, 64 rows of 64 pixels. The first tile that fails to decode
    /// fails the frame; more than [`MAX_BATCH_TILES`] tiles are refused.
    pub fn decode(
        &mut self,
        tiles: &[Tile<'_>],
        quants: &[Quant],
        entropy: EntropyAlgorithm,
    ) -> Result<&[u8], RfxDecodeError> {
        let distinct = checked_and_deduped(tiles, quants)?;
        self.decode_into(tiles, distinct, quants, entropy, None)?;
        Ok(&self.output)
    }

    /// Decodes every tile and hands each one's RGBA (64 rows of 64 pixels)
    /// to `each` with its index, as soon as its run of tiles is decoded:
    /// a thread's tiles go to `each` (one call at a time, never two at once)
    /// while the other threads decode theirs, so a caller copying tiles into
    /// its framebuffer does it beside the decoding, from a warm cache,
    /// not after it.
    ///
    /// Tiles reach `each` in index order when the order can matter: when two
    /// tiles share a position (the later one wins, as drawn in order) or some
    /// are coded alike. Otherwise in the order their runs finish. When a tile
    /// fails, the frame fails, and tiles of other runs may already have been
    /// handed over.
    pub fn decode_each(
        &mut self,
        tiles: &[Tile<'_>],
        quants: &[Quant],
        entropy: EntropyAlgorithm,
        mut each: impl FnMut(usize, &[u8]) + Send,
    ) -> Result<(), RfxDecodeError> {
        let distinct = checked_and_deduped(tiles, quants)?;
        self.decode_into(tiles, distinct, quants, entropy, Some(&mut each))
    }

    /// Decodes every tile and draws it into `frame`: the pixel at column
    /// `c`, row `r` of a tile at `(x, y)` (in tiles) lands at
    /// `(origin.0 + 64 x + c, origin.1 + 64 y + r)` when that is inside the
    /// framebuffer and inside one of `clip`'s rectangles. The result is
    /// drawing the tiles in order, as IronRDP's session does tile by tile.
    ///
    /// When no two tiles share a position and none is coded like another
    /// (a frame of detail: the costly kind), each thread draws the tiles it
    /// decodes straight into its own part of the framebuffer (a band 64
    /// rows high, up to 8 tiles wide, decoded together, then drawn): no copy
    /// waits for another, and no frame-sized buffer is filled first.
    /// Otherwise the tiles are decoded (a repeated one once) and drawn in
    /// order.
    ///
    /// The first tile that fails fails the frame; other tiles may already
    /// have been drawn. More than [`MAX_BATCH_TILES`] tiles are
    /// refused.
    pub fn decode_to(
        &mut self,
        tiles: &[Tile<'_>],
        quants: &[Quant],
        entropy: EntropyAlgorithm,
        origin: (usize, usize),
        clip: &[PixelRect],
        frame: Framebuffer<'_>,
    ) -> Result<(), RfxDecodeError> {
        let distinct = checked_and_deduped(tiles, quants)?;
        let width = frame.width;
        let stride = width * 4;
        // A buffer shorter than its size claims is drawn as far as it goes.
        let height = frame
            .height
            .min(frame.data.len().checked_div(stride).unwrap_or(0));
        let size = (width, height);
        let corner = |tile: &Tile<'_>| {
            (
                origin.0 + TILE_SIZE * usize::from(tile.x),
                origin.1 + TILE_SIZE * usize::from(tile.y),
            )
        };
        let rows = frame.data[..stride * height].chunks_exact_mut(stride.max(1));
        self.last_direct = distinct.0.len() == tiles.len() && distinct_positions(tiles);
        if !self.last_direct {
            // In order, each tile from where its distinct one was decoded:
            // no frame-sized copy first.
            let mut rows: Vec<&mut [u8]> = rows.collect();
            let mut draw = |i: usize, rgba: &[u8]| {
                draw_tile(rgba, corner(&tiles[i]), clip, size, &mut rows, (0, 0));
            };
            return self.decode_into(tiles, distinct, quants, entropy, Some(&mut draw));
        }
        // Bands of tiles (by their top), each band's tiles left to right,
        // taken a few at a time; and each band's rows cut into the parts
        // its jobs draw. The tiles are at distinct positions on a grid of
        // 64, so no two jobs' parts overlap.
        let mut order: Vec<usize> = (0..tiles.len()).collect();
        order.sort_unstable_by_key(|&i| {
            let (left, top) = corner(&tiles[i]);
            (top, left)
        });
        let mut rows: Vec<Option<&mut [u8]>> = rows.map(Some).collect();
        let mut jobs: Vec<DrawJob<'_, '_>> = Vec::new();
        for band in order.chunk_by(|&a, &b| corner(&tiles[a]).1 == corner(&tiles[b]).1) {
            let first_job = jobs.len();
            let top = corner(&tiles[band[0]]).1;
            for group in band.chunks(TILES_PER_JOB) {
                let left = corner(&tiles[group[0]]).0;
                let last = corner(&tiles[group[group.len() - 1]]).0;
                jobs.push(DrawJob {
                    tiles: group.iter().map(|&i| tiles[i].clone()).collect(),
                    left,
                    right: (last + TILE_SIZE).min(width),
                    top,
                    rows: Vec::new(),
                });
            }
            let band_jobs = &mut jobs[first_job..];
            for row in rows.iter_mut().skip(top).take(TILE_SIZE) {
                let mut rest = row.take().expect("a row belongs to one band");
                let mut at = 0;
                for job in band_jobs.iter_mut().take_while(|job| job.left < width) {
                    let (_, part) = std::mem::take(&mut rest).split_at_mut((job.left - at) * 4);
                    let (part, after) = part.split_at_mut((job.right - job.left) * 4);
                    job.rows.push(part);
                    rest = after;
                    at = job.right;
                }
            }
        }
        self.last_threads = threads_for(tiles, self.threads);
        run_jobs(
            jobs,
            self.last_threads,
            &mut self.workers,
            |mut job, worker| {
                // The job's tiles decoded together (with AVX-512 their
                // components are entropy-decoded side by side), then drawn.
                worker.tiles.resize(job.tiles.len() * TILE_RGBA_LEN, 0);
                decode_run(
                    &job.tiles,
                    quants,
                    entropy,
                    &mut worker.scratch,
                    &mut worker.tiles,
                )?;
                if !job.rows.is_empty() {
                    let at = (job.left, job.top);
                    let decoded = worker.tiles.chunks_exact(TILE_RGBA_LEN);
                    for (tile, rgba) in job.tiles.iter().zip(decoded) {
                        draw_tile(rgba, corner(tile), clip, size, &mut job.rows, at);
                    }
                }
                Ok(())
            },
        )
    }

    /// [`decode`](Self::decode) into `self.output`, or
    /// [`decode_each`](Self::decode_each) when `each` is given; `distinct`
    /// is what [`checked_and_deduped`] gave for `tiles`.
    fn decode_into<'t>(
        &mut self,
        tiles: &[Tile<'t>],
        (unique, source): Deduped<'t>,
        quants: &[Quant],
        entropy: EntropyAlgorithm,
        each: Option<&mut Each<'_>>,
    ) -> Result<(), RfxDecodeError> {
        // With no repeats the tiles decode straight into the answer (or to
        // `each`, as their runs finish, when no two share a position).
        let repeats = unique.len() < tiles.len();
        let (to_decode, into) = if repeats {
            (unique.as_slice(), &mut self.unique)
        } else {
            (tiles, &mut self.output)
        };
        self.last_threads = threads_for(to_decode, self.threads);
        let mut each = each;
        let stream = each.is_some() && !repeats && distinct_positions(tiles);
        self.last_streamed = stream;
        let sink = each.as_deref_mut().filter(|_| stream).map(Mutex::new);
        decode_tiles(
            to_decode,
            quants,
            entropy,
            self.last_threads,
            &mut self.workers,
            into,
            sink.as_ref(),
        )?;
        match each {
            // Every tile went to `each` as it was decoded.
            Some(_) if stream => {}
            // In order, from the decoded tiles.
            Some(each) => {
                for (i, index) in source.into_iter().enumerate() {
                    let from = if repeats { &self.unique } else { &self.output };
                    each(i, &from[index * TILE_RGBA_LEN..][..TILE_RGBA_LEN]);
                }
            }
            None if repeats => {
                self.output.resize(tiles.len() * TILE_RGBA_LEN, 0);
                for (out, index) in self.output.chunks_exact_mut(TILE_RGBA_LEN).zip(source) {
                    out.copy_from_slice(&self.unique[index * TILE_RGBA_LEN..][..TILE_RGBA_LEN]);
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// A frame's distinct tiles, and for each tile the index of its distinct one.
type Deduped<'t> = (Vec<Tile<'t>>, Vec<usize>);

/// [`check`], then [`dedupe`]: what every way of decoding a frame starts with.
fn checked_and_deduped<'t>(
    tiles: &[Tile<'t>],
    quants: &[Quant],
) -> Result<Deduped<'t>, RfxDecodeError> {
    check(tiles, quants)?;
    Ok(dedupe(tiles))
}

/// Refuses more than [`MAX_BATCH_TILES`] tiles, and a quantization index
/// past the table, before any work: no thread starts on a bad frame.
fn check(tiles: &[Tile<'_>], quants: &[Quant]) -> Result<(), RfxDecodeError> {
    if tiles.len() > MAX_BATCH_TILES {
        return Err(RfxDecodeError::TooManyTiles(tiles.len()));
    }
    for tile in tiles {
        for index in [tile.y_quant_index, tile.cb_quant_index, tile.cr_quant_index] {
            if usize::from(index) >= quants.len() {
                return Err(RfxDecodeError::InvalidQuantIndex {
                    index,
                    table_len: quants.len(),
                });
            }
        }
    }
    Ok(())
}

/// The distinct tiles of a frame, and for each tile the index of its
/// distinct one.
fn dedupe<'t>(tiles: &[Tile<'t>]) -> Deduped<'t> {
    // A tile coded exactly as an earlier one (same data, same quantization)
    // decodes to the same pixels: it is decoded once and copied. Solid
    // areas of a desktop send many such tiles. A tile is looked up by its
    // summary (quantization, lengths, first bytes), then compared in full
    // with at most a few earlier tiles of that summary: a server sending
    // many tiles alike in their first bytes costs a few comparisons a
    // tile, never one per earlier tile.
    let mut seen: HashMap<TileSummary, Vec<usize>> = HashMap::with_capacity(tiles.len());
    let mut unique: Vec<Tile<'_>> = Vec::with_capacity(tiles.len());
    let mut source = Vec::with_capacity(tiles.len());
    for tile in tiles {
        let candidates = seen.entry(TileSummary::of(tile)).or_default();
        let earlier = candidates
            .iter()
            .copied()
            .find(|&index| same_coding(&unique[index], tile));
        let index = earlier.unwrap_or_else(|| {
            unique.push(tile.clone());
            if candidates.len() < MAX_CANDIDATES {
                candidates.push(unique.len() - 1);
            }
            unique.len() - 1
        });
        source.push(index);
    }
    (unique, source)
}

/// What [`FrameDecoder::decode_each`] hands each decoded tile to.
type Each<'a> = dyn FnMut(usize, &[u8]) + Send + 'a;

/// Whether no two tiles share a position (so the order they are drawn in
/// cannot matter).
fn distinct_positions(tiles: &[Tile<'_>]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(tiles.len());
    tiles.iter().all(|tile| seen.insert((tile.x, tile.y)))
}

/// Earlier tiles of one summary a tile is compared with, at most.
const MAX_CANDIDATES: usize = 4;

/// Whether two tiles decode alike: the same coded components under the same
/// quantization.
fn same_coding(a: &Tile<'_>, b: &Tile<'_>) -> bool {
    (a.y_quant_index, a.cb_quant_index, a.cr_quant_index)
        == (b.y_quant_index, b.cb_quant_index, b.cr_quant_index)
        && a.y_data == b.y_data
        && a.cb_data == b.cb_data
        && a.cr_data == b.cr_data
}

/// A tile's quantization, its components' lengths and first 16 bytes: cheap
/// to hash (hashing every byte of a frame of detailed tiles, about 1 MB, cost
/// 7% of decoding it), and tiles that differ mostly differ there.
#[derive(PartialEq, Eq, Hash)]
struct TileSummary {
    quants: [u8; 3],
    lengths: [usize; 3],
    heads: [[u8; 16]; 3],
}

impl TileSummary {
    fn of(tile: &Tile<'_>) -> Self {
        let data = [tile.y_data, tile.cb_data, tile.cr_data];
        Self {
            quants: [tile.y_quant_index, tile.cb_quant_index, tile.cr_quant_index],
            lengths: data.map(<[u8]>::len),
            heads: data.map(|data| {
                let mut head = [0u8; 16];
                let len = data.len().min(16);
                head[..len].copy_from_slice(&data[..len]);
                head
            }),
        }
    }
}

/// How many of at most `threads` threads decoding `tiles` pays for.
fn threads_for(tiles: &[Tile<'_>], threads: usize) -> usize {
    let bytes: usize = tiles
        .iter()
        .map(|tile| tile.y_data.len() + tile.cb_data.len() + tile.cr_data.len())
        .sum();
    threads
        .min(tiles.len() / MIN_TILES_PER_THREAD)
        .min(bytes / MIN_BYTES_PER_THREAD)
        .max(1)
}

/// Decodes `tiles` into `output` (tile `i` at `i * TILE_RGBA_LEN`) on
/// `threads` threads, handing each run of tiles to `sink` (when given) as
/// soon as it is decoded.
fn decode_tiles(
    tiles: &[Tile<'_>],
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    threads: usize,
    workers: &mut [Worker],
    output: &mut Vec<u8>,
    sink: Option<&Mutex<&mut Each<'_>>>,
) -> Result<(), RfxDecodeError> {
    output.resize(tiles.len() * TILE_RGBA_LEN, 0);
    let jobs = tiles
        .chunks(TILES_PER_JOB)
        .zip(output.chunks_mut(TILES_PER_JOB * TILE_RGBA_LEN))
        .enumerate()
        .collect();
    run_jobs(
        jobs,
        threads,
        workers,
        |(index, (tiles, output)): (usize, (&[Tile<'_>], &mut [u8])), worker| {
            decode_run(tiles, quants, entropy, &mut worker.scratch, output)?;
            if let Some(sink) = sink {
                let mut each = sink.lock().unwrap_or_else(PoisonError::into_inner);
                for (i, rgba) in output.chunks_exact(TILE_RGBA_LEN).enumerate() {
                    each(index * TILES_PER_JOB + i, rgba);
                }
            }
            Ok(())
        },
    )
}

/// Runs `jobs` on `threads` threads (at most one per worker; 1: on the
/// caller's), each thread taking the next job until none is left or one has
/// failed. Small jobs handed out in turn, so that a thread the machine slows
/// down (another program on its core) takes fewer of them.
fn run_jobs<J: Send>(
    jobs: Vec<J>,
    threads: usize,
    workers: &mut [Worker],
    work: impl Fn(J, &mut Worker) -> Result<(), RfxDecodeError> + Sync,
) -> Result<(), RfxDecodeError> {
    if threads <= 1 {
        let worker = workers.first_mut().expect("at least one worker");
        return jobs.into_iter().try_for_each(|job| work(job, worker));
    }
    let jobs: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|job| Mutex::new(Some(job))).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let take_jobs = |worker: &mut Worker| -> Result<(), RfxDecodeError> {
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(index) else {
                break;
            };
            let taken = job.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(job) = taken
                && let Err(e) = work(job, worker)
            {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    let (own, others) = workers.split_first_mut().expect("at least one worker");
    std::thread::scope(|scope| {
        let take_jobs = &take_jobs;
        // A thread the system cannot start leaves its share to the others.
        let helpers: Vec<_> = others
            .iter_mut()
            .take(threads - 1)
            .map_while(|worker| {
                std::thread::Builder::new()
                    .name("rfx-decode".into())
                    .spawn_scoped(scope, move || take_jobs(worker))
                    .ok()
            })
            .collect();
        let mut result = take_jobs(own);
        for helper in helpers {
            let outcome = helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result = result.and(outcome);
        }
        result
    })
}

/// Tiles one thread decodes and draws: up to [`TILES_PER_JOB`] tiles side by
/// side in one band of 64 rows, and those rows of the framebuffer from the
/// first tile's left edge to the last one's right edge (none when the tiles
/// lie outside the framebuffer: they are decoded all the same, for their
/// errors).
struct DrawJob<'t, 'f> {
    tiles: Vec<Tile<'t>>,
    left: usize,
    right: usize,
    top: usize,
    rows: Vec<&'f mut [u8]>,
}

/// Copies the parts of a decoded tile (`rgba`, its top-left pixel at
/// `at`) that lie inside the framebuffer (`width`×`height`) and inside one
/// of `clip`'s rectangles into `rows`: framebuffer rows from `rows_top` on,
/// each starting at column `rows_left`.
fn draw_tile(
    rgba: &[u8],
    at: (usize, usize),
    clip: &[PixelRect],
    (width, height): (usize, usize),
    rows: &mut [&mut [u8]],
    (rows_left, rows_top): (usize, usize),
) {
    let (left, top) = at;
    for rect in clip {
        let (x0, x1) = (
            left.max(rect.left),
            (left + TILE_SIZE).min(rect.right).min(width),
        );
        let (y0, y1) = (
            top.max(rect.top),
            (top + TILE_SIZE).min(rect.bottom).min(height),
        );
        if x0 >= x1 {
            continue;
        }
        for y in y0..y1 {
            let source = ((y - top) * TILE_SIZE + (x0 - left)) * 4;
            rows[y - rows_top][(x0 - rows_left) * 4..(x1 - rows_left) * 4]
                .copy_from_slice(&rgba[source..source + (x1 - x0) * 4]);
        }
    }
}

/// Decodes a run of tiles, one after another, into `output`, with the
/// vector instructions of the machine it runs on when they help: the same
/// code compiled twice, for AVX2 (with BMI2 and LZCNT, for the entropy
/// decoder's shifts and bit counts) and for the baseline `x86_64` every
/// build targets, and with AVX-512 the run's entropy decoding done in
/// lanes ([`decode_run_avx512`]), chosen at run time. The pixels and the
/// errors are the same either way.
fn decode_run(
    tiles: &[Tile<'_>],
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    scratch: &mut Scratch,
    output: &mut [u8],
) -> Result<(), RfxDecodeError> {
    #[cfg(target_arch = "x86_64")]
    if rlgr::lanes::available() {
        // SAFETY: `decode_run_avx512` needs only the instructions
        // `lanes::available` found on this processor.
        #[allow(unsafe_code)]
        return unsafe { decode_run_avx512(tiles, quants, entropy, scratch, output) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: `decode_run_avx2` needs only the instructions `has_avx2`
        // found on this processor.
        #[allow(unsafe_code)]
        return unsafe { decode_run_avx2(tiles, quants, entropy, scratch, output) };
    }
    decode_tiles_in_turn(tiles, quants, entropy, scratch, output)
}

/// With AVX-512: the run's components entropy-decoded together, eight at a
/// time (`rlgr::lanes`), then each tile reconstructed as in
/// [`decode_tile`]. The first error in tile order is the run's, as there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512cd,avx2,bmi1,bmi2,lzcnt")]
fn decode_run_avx512(
    tiles: &[Tile<'_>],
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    scratch: &mut Scratch,
    output: &mut [u8],
) -> Result<(), RfxDecodeError> {
    use rlgr::lanes::{COMPONENT_LEN, STRIDE};
    let components: Vec<&[u8]> = tiles
        .iter()
        .flat_map(|tile| [tile.y_data, tile.cb_data, tile.cr_data])
        .collect();
    let lanes = &mut scratch.lanes;
    lanes.coefficients.resize(components.len() * STRIDE, 0);
    let mut outcomes = rlgr::lanes::decode_all(
        matches!(entropy, EntropyAlgorithm::Rlgr3),
        &components,
        &mut lanes.coefficients,
        &mut lanes.scratch,
    )
    .into_iter();
    let mut coefficients = lanes.coefficients.chunks_exact_mut(STRIDE);
    for (tile, rgba) in tiles.iter().zip(output.chunks_exact_mut(TILE_RGBA_LEN)) {
        let mut planes = [(); 3].map(|()| {
            let plane = coefficients.next().expect("three components a tile");
            &mut plane[..COMPONENT_LEN]
        });
        for _ in 0..3 {
            outcomes
                .next()
                .expect("an outcome a component")
                .map_err(RfxDecodeError::Rlgr)?;
        }
        reconstruct_tile(tile, quants, &mut planes, &mut scratch.temp, rgba);
    }
    Ok(())
}

/// Whether this processor has what [`decode_run_avx2`] is compiled for.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt")]
fn decode_run_avx2(
    tiles: &[Tile<'_>],
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    scratch: &mut Scratch,
    output: &mut [u8],
) -> Result<(), RfxDecodeError> {
    decode_tiles_in_turn(tiles, quants, entropy, scratch, output)
}

/// The body of both [`decode_run`] variants: inlined into `decode_run_avx2`
/// it is compiled for AVX2, and inlined into `decode_run` itself (the
/// baseline) for any `x86_64`.
#[inline(always)]
fn decode_tiles_in_turn(
    tiles: &[Tile<'_>],
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    scratch: &mut Scratch,
    output: &mut [u8],
) -> Result<(), RfxDecodeError> {
    for (tile, rgba) in tiles.iter().zip(output.chunks_exact_mut(TILE_RGBA_LEN)) {
        decode_tile(tile, quants, entropy, scratch, rgba)?;
    }
    Ok(())
}

/// One tile: per component the entropy decoding (`rlgr.rs`), the sub-band
/// reconstruction, the dequantization and the inverse DWT (`dwt.rs`), then
/// the colour conversion. A component without detail (see [`flat_value`])
/// skips the dequantization and the inverse DWT; a tile whose three
/// components are flat is one colour.
#[inline(always)]
fn decode_tile(
    tile: &Tile<'_>,
    quants: &[Quant],
    entropy: EntropyAlgorithm,
    scratch: &mut Scratch,
    rgba: &mut [u8],
) -> Result<(), RfxDecodeError> {
    for (data, plane) in [tile.y_data, tile.cb_data, tile.cr_data]
        .into_iter()
        .zip(scratch.planes.iter_mut())
    {
        rlgr::decode(entropy, data, plane).map_err(RfxDecodeError::Rlgr)?;
    }
    let [y, cb, cr] = &mut scratch.planes;
    reconstruct_tile(tile, quants, &mut [y, cb, cr], &mut scratch.temp, rgba);
    Ok(())
}

/// A tile from its entropy-decoded components (`planes`: Y, Cb, Cr, each
/// [`TILE_PIXELS`] coefficients, changed in place): the sub-band
/// reconstruction, the dequantization and the inverse DWT, then the colour
/// conversion into `rgba`.
#[inline(always)]
fn reconstruct_tile(
    tile: &Tile<'_>,
    quants: &[Quant],
    planes: &mut [&mut [i16]; 3],
    temp: &mut [i16],
    rgba: &mut [u8],
) {
    let indices = [tile.y_quant_index, tile.cb_quant_index, tile.cr_quant_index];
    let mut flat = [None; 3];
    for ((index, plane), flat) in indices.into_iter().zip(planes.iter_mut()).zip(&mut flat) {
        // Checked by `decode` before any tile.
        let quant = &quants[usize::from(index)];
        subband_reconstruction::decode(&mut plane[LL3_START..]);
        *flat = flat_value(plane, quant);
        match *flat {
            Some(value) => plane.fill(value),
            None => {
                dwt::dequantize(plane, quant);
                dwt::inverse(plane, temp);
            }
        }
    }
    if let [Some(y), Some(cb), Some(cr)] = flat {
        let pixel = ycbcr_pixel(y, cb, cr).to_le_bytes();
        for out in rgba[..TILE_RGBA_LEN].chunks_exact_mut(4) {
            out.copy_from_slice(&pixel);
        }
        return;
    }
    let [y, cb, cr] = planes;
    ycbcr_to_rgba(y, cb, cr, rgba);
}

/// Where the LL3 band (the 8×8 averages) starts in a component's 4096
/// coefficients; the detail bands come before it.
const LL3_START: usize = 4032;

/// The value of every sample of a decoded component, when it is one value:
/// every detail coefficient is zero and the LL3 band holds one value (after
/// sub-band reconstruction). Flat areas of a desktop encode so (a solid
/// background, the chroma of black-on-white text).
///
/// Exact, not an approximation: dequantization shifts the LL3 value by the
/// same amount everywhere, and every step of IronRDP's inverse DWT on a
/// constant with zero detail gives that constant back (each even sample is
/// `low - ceil_avg(0, 0)`, each odd one `0 + floor_avg(c, c)`, edges alike),
/// in the same wrapping `i16` arithmetic. The tests check it bit for bit
/// against `TileDecoder`.
#[inline(always)]
fn flat_value(plane: &[i16], quant: &Quant) -> Option<i16> {
    let (detail, ll3) = plane[..TILE_PIXELS].split_at(LL3_START);
    let first = ll3[0];
    // The 64 averages first: most tiles with detail fail here, cheaply.
    if ll3.iter().any(|&value| value != first) {
        return None;
    }
    // An OR over runs vectorizes where an early-exit scan per value does not.
    if detail
        .chunks_exact(64)
        .any(|run| run.iter().fold(0, |acc, &value| acc | value) != 0)
    {
        return None;
    }
    // `quantization::decode` shifts LL3 left by `ll3 - 1` when that is positive
    // (a 4-bit field: at most 14).
    let shift = i16::from(quant.ll3) - 1;
    Some(if shift > 0 {
        first.wrapping_shl(shift.unsigned_abs().into())
    } else {
        first
    })
}

const PRECISION: i32 = 16;
const Y_SCALE: i32 = 1 << PRECISION;
const CR_R: i32 = (1.402525f32 * Y_SCALE as f32) as i32;
const CB_G: i32 = (0.343730f32 * Y_SCALE as f32) as i32;
const CR_G: i32 = (0.714401f32 * Y_SCALE as f32) as i32;
const CB_B: i32 = (1.769905f32 * Y_SCALE as f32) as i32;

/// One RemoteFX YCbCr sample (each an 11.5 fixed-point `i16`) as an RGBA
/// word, exactly as the `yuv` crate's `rdp_yuv444_to_rgba` computes it,
/// including its wrapping arithmetic on out-of-range input (a server's data
/// is not trusted to be in range; the answer must still be the same pixels
/// IronRDP would draw).
#[inline(always)]
fn ycbcr_pixel(y: i16, cb: i16, cr: i16) -> u32 {
    #[inline(always)]
    fn channel(value: i32) -> u32 {
        // `as u32` of a value in 0..=255.
        (value >> 21).clamp(0, 255) as u32
    }
    let (u, v) = (i32::from(cb), i32::from(cr));
    let yy = i32::from(y.wrapping_add(4096)).wrapping_mul(Y_SCALE);
    let r = channel(yy.wrapping_add(CR_R.wrapping_mul(v)));
    let g = channel(
        yy.wrapping_sub(CR_G.wrapping_mul(v))
            .wrapping_sub(CB_G.wrapping_mul(u)),
    );
    let b = channel(yy.wrapping_add(CB_B.wrapping_mul(u)));
    r | (g << 8) | (b << 16) | (0xff << 24)
}

/// A tile's YCbCr planes to RGBA, pixel by pixel with [`ycbcr_pixel`]; one
/// `u32` store a pixel, so the loop vectorizes.
#[inline(always)]
fn ycbcr_to_rgba(y: &[i16], cb: &[i16], cr: &[i16], rgba: &mut [u8]) {
    let (y, cb, cr) = (&y[..TILE_PIXELS], &cb[..TILE_PIXELS], &cr[..TILE_PIXELS]);
    let rgba = &mut rgba[..TILE_RGBA_LEN];
    for i in 0..TILE_PIXELS {
        let word = ycbcr_pixel(y[i], cb[i], cr[i]);
        rgba[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
}

mod dwt;
mod rlgr;
pub mod sample;

#[cfg(test)]
mod tests {
    use ironrdp_graphics::rfx::TileDecoder;

    use super::sample::Noise;
    use super::sample::encode_tile as encode;
    use super::*;

    /// The usual quantization, and the finest (every band at 6).
    const QUANTS: [Quant; 2] = [
        super::sample::QUANT,
        Quant {
            ll3: 6,
            lh3: 6,
            hl3: 6,
            hh3: 6,
            lh2: 6,
            hl2: 6,
            hh2: 6,
            lh1: 6,
            hl1: 6,
            hh1: 6,
        },
    ];

    /// A 64×64 RGBA picture: gradients, hard edges, a noisy corner.
    fn picture(seed: u64) -> Vec<u8> {
        let mut noise = Noise(seed | 1);
        let mut rgba = vec![0u8; TILE_RGBA_LEN];
        for (i, pixel) in rgba.chunks_exact_mut(4).enumerate() {
            let (x, y) = (i % TILE_SIZE, i / TILE_SIZE);
            let (r, g, b) = match (x / 16 + y / 16) % 4 {
                0 => ((x * 4) as u8, (y * 4) as u8, 0x80),
                1 => (0xff, 0xff, 0xff),
                2 => (0, 0, 0),
                _ => (noise.byte(), noise.byte(), noise.byte()),
            };
            pixel.copy_from_slice(&[r, g, b, 0xff]);
        }
        rgba
    }

    fn tile<'a>(x: u16, quant: u8, data: &'a [Vec<u8>; 3]) -> Tile<'a> {
        Tile {
            y_quant_index: quant,
            cb_quant_index: quant,
            cr_quant_index: quant,
            x,
            y: 0,
            y_data: &data[0],
            cb_data: &data[1],
            cr_data: &data[2],
        }
    }

    /// IronRDP's decoder, tile after tile: the reference.
    fn reference(tiles: &[Tile<'_>], entropy: EntropyAlgorithm) -> Result<Vec<u8>, RfxDecodeError> {
        let mut decoder = TileDecoder::new();
        let mut out = Vec::new();
        for tile in tiles {
            out.extend_from_slice(decoder.decode(tile, &QUANTS, entropy)?);
        }
        Ok(out)
    }

    #[test]
    fn encoded_pictures_decode_to_ironrdps_pixels_on_one_thread_and_on_four() {
        for entropy in [EntropyAlgorithm::Rlgr1, EntropyAlgorithm::Rlgr3] {
            let encoded: Vec<_> = (0..100u16)
                .map(|i| {
                    let quant = &QUANTS[usize::from(i % 2)];
                    encode(&picture(u64::from(i) + 7), quant, entropy)
                })
                .collect();
            let tiles: Vec<_> = encoded
                .iter()
                .enumerate()
                .map(|(i, data)| tile(i as u16, (i % 2) as u8, data))
                .collect();
            let expected = reference(&tiles, entropy).expect("reference decodes");
            // The pictures survive the codec (lossy, but close): the test is not vacuous.
            let first = picture(7);
            let close = expected[..TILE_RGBA_LEN]
                .iter()
                .zip(&first)
                .filter(|(a, b)| a.abs_diff(**b) <= 24)
                .count();
            assert!(
                close > TILE_RGBA_LEN * 9 / 10,
                "{close} of {TILE_RGBA_LEN} close"
            );
            for threads in [1, 4] {
                let mut decoder = FrameDecoder::with_threads(threads);
                let ours = decoder.decode(&tiles, &QUANTS, entropy).expect("decodes");
                assert!(
                    ours == expected.as_slice(),
                    "{threads} threads, {entropy:?}"
                );
                assert_eq!(decoder.last_threads, threads, "the frame is big enough");
            }
        }
    }

    #[test]
    fn the_baseline_avx2_and_avx512_variants_all_give_ironrdps_pixels() {
        // `FrameDecoder` runs the variant this processor takes; here each is
        // called directly, so the others are checked too.
        let mut noise = Noise(0xba5e);
        for entropy in [EntropyAlgorithm::Rlgr3, EntropyAlgorithm::Rlgr1] {
            let mut encoded: Vec<_> = (0..40u16)
                .map(|i| {
                    encode(
                        &picture(u64::from(i) * 5 + 1),
                        &QUANTS[usize::from(i % 2)],
                        entropy,
                    )
                })
                .collect();
            // And damaged ones: a result or an error, as IronRDP gives.
            for data in encoded.iter_mut().skip(24) {
                for component in data.iter_mut() {
                    let at = noise.below(component.len());
                    component[at] ^= 0x5a;
                }
            }
            let mut variants: Vec<(&str, DecodeRun)> = vec![("baseline", decode_tiles_in_turn)];
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx2() {
                    variants.push(("avx2", |tiles, quants, entropy, scratch, output| {
                        // SAFETY: `has_avx2` found what it needs.
                        #[allow(unsafe_code)]
                        unsafe {
                            decode_run_avx2(tiles, quants, entropy, scratch, output)
                        }
                    }));
                } else {
                    eprintln!("NOT TESTED: no AVX2 on this processor, so no AVX2 variant");
                }
                if rlgr::lanes::available() {
                    variants.push(("avx512", |tiles, quants, entropy, scratch, output| {
                        // SAFETY: `lanes::available` found what it needs.
                        #[allow(unsafe_code)]
                        unsafe {
                            decode_run_avx512(tiles, quants, entropy, scratch, output)
                        }
                    }));
                } else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI's machine has AVX-512: its variant must be tested there"
                    );
                    eprintln!("NOT TESTED: no AVX-512 on this processor, so no AVX-512 variant");
                }
            }
            // Runs of one tile, and of up to 8 as a thread takes them (the
            // AVX-512 variant decodes a run's components together).
            let runs = (0..encoded.len()).map(|i| i..i + 1).chain(
                (0..encoded.len())
                    .step_by(TILES_PER_JOB)
                    .map(|i| i..(i + TILES_PER_JOB - i % 3).min(encoded.len())),
            );
            for run in runs {
                let tiles: Vec<_> = run
                    .clone()
                    .map(|i| tile(i as u16, (i % 2) as u8, &encoded[i]))
                    .collect();
                let expected = reference(&tiles, entropy);
                for (name, decode) in &variants {
                    let mut scratch = Scratch::new();
                    let mut output = vec![0u8; tiles.len() * TILE_RGBA_LEN];
                    let ours = decode(&tiles, &QUANTS, entropy, &mut scratch, &mut output);
                    match (&expected, ours) {
                        (Ok(expected), Ok(())) => {
                            assert!(output == *expected, "{name}, {entropy:?}, tiles {run:?}");
                        }
                        (Err(theirs), Err(ours)) => {
                            assert_eq!(
                                ours.to_string(),
                                theirs.to_string(),
                                "{name}, tiles {run:?}"
                            );
                        }
                        (expected, ours) => panic!(
                            "{name}, {entropy:?}, tiles {run:?}: IronRDP {:?}, ours {ours:?}",
                            expected.as_ref().map(|_| "pixels")
                        ),
                    }
                }
            }
        }
    }

    type DecodeRun = fn(
        &[Tile<'_>],
        &[Quant],
        EntropyAlgorithm,
        &mut Scratch,
        &mut [u8],
    ) -> Result<(), RfxDecodeError>;

    #[test]
    fn flat_tiles_take_the_short_way_to_ironrdps_pixels() {
        let entropy = EntropyAlgorithm::Rlgr3;
        // Solid pictures (every component flat) and black-on-white stripes
        // (flat chroma beside a detailed Y), in both quantizations.
        let mut pictures: Vec<Vec<u8>> = [
            [0u8, 0, 0],
            [255, 255, 255],
            [0x20, 0x60, 0xd0],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [0x80, 0x80, 0x80],
        ]
        .iter()
        .map(|rgb| {
            let mut rgba = vec![0xff; TILE_RGBA_LEN];
            for pixel in rgba.chunks_exact_mut(4) {
                pixel[..3].copy_from_slice(rgb);
            }
            rgba
        })
        .collect();
        let mut stripes = vec![0xff; TILE_RGBA_LEN];
        for (i, pixel) in stripes.chunks_exact_mut(4).enumerate() {
            if (i / TILE_SIZE).is_multiple_of(4) && !i.is_multiple_of(3) {
                pixel[..3].fill(0);
            }
        }
        pictures.push(stripes);
        let encoded: Vec<_> = pictures
            .iter()
            .flat_map(|p| (0..2).map(move |q| (q, p)))
            .map(|(q, p)| (q, encode(p, &QUANTS[q], entropy)))
            .collect();
        // Components made directly: no detail, one LL3 value (in and far out
        // of range, so the shift wraps), under every LL3 quantization.
        let quants: Vec<Quant> = (0..16)
            .map(|ll3| Quant {
                ll3,
                ..super::sample::QUANT
            })
            .collect();
        let mut made = Vec::new();
        for value in [0i16, 1, -1, 37, -512, 2047, 16_000, -16_000] {
            let mut plane = [0i16; TILE_PIXELS];
            plane[LL3_START] = value;
            let mut data = vec![0u8; TILE_PIXELS * 4];
            let len = ironrdp_graphics::rlgr::encode(entropy, &plane, &mut data).expect("encodes");
            data.truncate(len);
            made.push(data);
        }
        let detailed = encode(&picture(11), &quants[6], entropy);
        let mut tiles = Vec::new();
        for (q, data) in &encoded {
            tiles.push(tile(0, *q as u8, data));
        }
        for (i, data) in made.iter().enumerate() {
            for ll3 in 0..16u8 {
                // All three flat, and one flat beside detailed ones.
                tiles.push(Tile {
                    y_quant_index: ll3,
                    cb_quant_index: ll3,
                    cr_quant_index: 15 - ll3,
                    x: 0,
                    y: 0,
                    y_data: data,
                    cb_data: &made[(i + 3) % made.len()],
                    cr_data: &made[(i + 5) % made.len()],
                });
                tiles.push(Tile {
                    y_quant_index: 6,
                    cb_quant_index: ll3,
                    cr_quant_index: 6,
                    x: 0,
                    y: 0,
                    y_data: &detailed[0],
                    cb_data: data,
                    cr_data: &detailed[2],
                });
            }
        }
        // The encoded pictures use indices 0 and 1 of QUANTS; decode them apart.
        let (pictures_part, made_part) = tiles.split_at(encoded.len());
        for (part, table) in [
            (pictures_part, QUANTS.to_vec()),
            (made_part, quants.clone()),
        ] {
            let mut reference_decoder = TileDecoder::new();
            let mut expected = Vec::new();
            for tile in part {
                expected.extend_from_slice(
                    reference_decoder
                        .decode(tile, &table, entropy)
                        .expect("reference decodes"),
                );
            }
            let mut decoder = FrameDecoder::with_threads(1);
            let ours = decoder.decode(part, &table, entropy).expect("decodes");
            for (i, (ours, expected)) in ours
                .chunks_exact(TILE_RGBA_LEN)
                .zip(expected.chunks_exact(TILE_RGBA_LEN))
                .enumerate()
            {
                assert!(ours == expected, "tile {i} differs from IronRDP's");
            }
        }
        // 510 solid tiles (a 1080p frame of one colour) are too little data
        // to share: one thread, however many the decoder may use.
        let solid: Vec<_> = (0..510).map(|_| pictures_part[4].clone()).collect();
        let mut decoder = FrameDecoder::with_threads(4);
        decoder.decode(&solid, &QUANTS, entropy).expect("decodes");
        assert_eq!(decoder.last_threads, 1);
        // The solid pictures came out solid, in their colour (the short way ran).
        let mut decoder = FrameDecoder::with_threads(1);
        let blue = decoder
            .decode(&pictures_part[4..5], &QUANTS, entropy)
            .expect("decodes");
        assert!(blue.chunks_exact(4).all(|p| p == blue[..4].as_ref()));
        assert!(
            close_to(&blue[..4], &[0x20, 0x60, 0xd0]),
            "{:?}",
            &blue[..4]
        );
        // And the flat test itself: detail or uneven averages are not flat.
        let mut plane = [0i16; TILE_PIXELS];
        plane[LL3_START..].fill(9);
        assert_eq!(flat_value(&plane, &quants[3]), Some(9 << 2));
        assert_eq!(flat_value(&plane, &quants[1]), Some(9));
        assert_eq!(flat_value(&plane, &quants[0]), Some(9));
        plane[TILE_PIXELS - 1] = 8;
        assert_eq!(flat_value(&plane, &quants[3]), None);
        plane[TILE_PIXELS - 1] = 9;
        plane[4031] = 1;
        assert_eq!(flat_value(&plane, &quants[3]), None);
    }

    fn close_to(pixel: &[u8], rgb: &[u8; 3]) -> bool {
        pixel[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(*b) <= 4)
    }

    #[test]
    fn garbage_data_gives_ironrdps_pixels_or_its_error() {
        let mut noise = Noise(0x5eed);
        let mut decoder = FrameDecoder::with_threads(2);
        let mut decoded = 0;
        for round in 0..300 {
            let len = 1 + (noise.next_u64() % 3000) as usize;
            let data: [Vec<u8>; 3] =
                std::array::from_fn(|_| (0..len).map(|_| noise.byte()).collect());
            let tiles = [tile(0, (round % 2) as u8, &data)];
            let entropy = if round % 3 == 0 {
                EntropyAlgorithm::Rlgr3
            } else {
                EntropyAlgorithm::Rlgr1
            };
            match (
                reference(&tiles, entropy),
                decoder.decode(&tiles, &QUANTS, entropy),
            ) {
                (Ok(expected), Ok(ours)) => {
                    assert!(ours == expected.as_slice(), "round {round}");
                    decoded += 1;
                }
                (Err(_), Err(_)) => {}
                (expected, ours) => panic!(
                    "round {round}: IronRDP {:?}, ours {:?}",
                    expected.map(|_| "pixels"),
                    ours.map(|_| "pixels")
                ),
            }
        }
        // Random bytes are mostly valid RLGR: the comparison covered real pixels.
        assert!(decoded > 100, "only {decoded} of 300 decoded");
    }

    #[test]
    fn a_quant_index_past_the_table_is_refused_before_decoding() {
        let data = encode(&picture(1), &QUANTS[0], EntropyAlgorithm::Rlgr1);
        let tiles: Vec<_> = (0..60)
            .map(|i| tile(i, if i == 59 { 2 } else { 0 }, &data))
            .collect();
        let mut decoder = FrameDecoder::with_threads(4);
        match decoder.decode(&tiles, &QUANTS, EntropyAlgorithm::Rlgr1) {
            Err(RfxDecodeError::InvalidQuantIndex {
                index: 2,
                table_len: 2,
            }) => {}
            other => panic!("{:?}", other.map(<[u8]>::len)),
        }
        // And the decoder serves the next frame.
        let good = &tiles[..59];
        assert_eq!(
            decoder
                .decode(good, &QUANTS, EntropyAlgorithm::Rlgr1)
                .map(<[u8]>::len)
                .ok(),
            Some(59 * TILE_RGBA_LEN)
        );
    }

    #[test]
    fn a_bad_tile_amid_a_big_frame_fails_the_frame_on_several_threads_and_the_next_frame_decodes() {
        // 100 different pictures: no tile repeats, so all are decoded.
        let encoded: Vec<_> = (0..100)
            .map(|i| encode(&picture(2 * i + 3), &QUANTS[0], EntropyAlgorithm::Rlgr1))
            .collect();
        let mut tiles: Vec<_> = encoded
            .iter()
            .enumerate()
            .map(|(i, data)| tile(i as u16, 0, data))
            .collect();
        tiles[57].cb_data = &[];
        assert!(
            reference(&tiles, EntropyAlgorithm::Rlgr1).is_err(),
            "IronRDP refuses it too"
        );
        let mut decoder = FrameDecoder::with_threads(4);
        assert!(matches!(
            decoder.decode(&tiles, &QUANTS, EntropyAlgorithm::Rlgr1),
            Err(RfxDecodeError::Rlgr(_))
        ));
        assert!(decoder.last_threads > 1, "{} thread", decoder.last_threads);
        tiles[57].cb_data = &encoded[57][1];
        let expected = reference(&tiles, EntropyAlgorithm::Rlgr1).expect("decodes");
        let ours = decoder
            .decode(&tiles, &QUANTS, EntropyAlgorithm::Rlgr1)
            .expect("decodes");
        assert!(ours == expected.as_slice());
    }

    #[test]
    fn repeated_tiles_are_decoded_once_and_copied_to_ironrdps_pixels() {
        let entropy = EntropyAlgorithm::Rlgr1;
        let encoded: Vec<_> = (0..40)
            .map(|i| encode(&picture(2 * i + 41), &QUANTS[0], entropy))
            .collect();
        // 200 tiles: 40 pictures in turn, and one of them also under the other
        // quantization (the same data, decoded differently: not a repeat).
        let mut tiles: Vec<_> = (0..200)
            .map(|i| tile(i as u16, 0, &encoded[i % encoded.len()]))
            .collect();
        tiles[7].y_quant_index = 1;
        let expected = reference(&tiles, entropy).expect("reference decodes");
        for threads in [1, 2] {
            let mut decoder = FrameDecoder::with_threads(threads);
            let ours = decoder.decode(&tiles, &QUANTS, entropy).expect("decodes");
            assert!(ours == expected.as_slice(), "{threads} threads");
            // 41 distinct tiles decoded: too few tiles to share among threads.
            assert_eq!(decoder.last_threads, 1);
            assert_eq!(decoder.unique.len(), 41 * TILE_RGBA_LEN);
        }
        // Tiles alike in their first bytes and lengths but not after: each is
        // its own tile (and each is compared with at most a few others).
        let base = encode(&picture(99), &QUANTS[0], entropy);
        let variants: Vec<[Vec<u8>; 3]> = (0..12u8)
            .map(|i| {
                let mut data = base.clone();
                let last = data[0].len() - 1;
                data[0][last] ^= i;
                data
            })
            .collect();
        let alike: Vec<_> = (0..36)
            .map(|i| tile(i as u16, 0, &variants[i % variants.len()]))
            .collect();
        let expected = reference(&alike, entropy).expect("the variants decode");
        let mut decoder = FrameDecoder::with_threads(1);
        let ours = decoder.decode(&alike, &QUANTS, entropy).expect("decodes");
        assert!(ours == expected.as_slice());
        // 12 variants: the first 4 are found again by comparison, the other 8
        // decoded each of the 3 times they come.
        assert_eq!(decoder.unique.len(), (4 + 8 * 3) * TILE_RGBA_LEN);
        // A bad tile repeated fails the frame like a bad tile alone.
        tiles[3].cb_data = &[];
        tiles[43].cb_data = &[];
        let mut decoder = FrameDecoder::with_threads(2);
        assert!(matches!(
            decoder.decode(&tiles, &QUANTS, entropy),
            Err(RfxDecodeError::Rlgr(_))
        ));
    }

    #[test]
    fn each_tile_is_handed_over_once_with_its_pixels_and_in_order_when_order_matters() {
        let entropy = EntropyAlgorithm::Rlgr3;
        let encoded: Vec<_> = (0..96)
            .map(|i| encode(&picture(3 * i + 2), &QUANTS[0], entropy))
            .collect();
        // 96 distinct tiles at distinct positions: handed over as runs finish.
        let mut tiles: Vec<_> = encoded
            .iter()
            .enumerate()
            .map(|(i, data)| tile(i as u16, 0, data))
            .collect();
        let handed = |decoder: &mut FrameDecoder, tiles: &[Tile<'_>]| {
            let mut calls: Vec<(usize, Vec<u8>)> = Vec::new();
            decoder
                .decode_each(tiles, &QUANTS, entropy, |i, rgba| {
                    calls.push((i, rgba.to_vec()))
                })
                .map(|()| calls)
        };
        let expected = reference(&tiles, entropy).expect("reference decodes");
        let check = |calls: &[(usize, Vec<u8>)], expected: &[u8], count: usize| {
            assert_eq!(calls.len(), count);
            let mut seen = vec![false; count];
            for (i, rgba) in calls {
                assert!(!seen[*i], "tile {i} twice");
                seen[*i] = true;
                assert!(rgba.as_slice() == &expected[i * TILE_RGBA_LEN..][..TILE_RGBA_LEN]);
            }
        };
        let mut decoder = FrameDecoder::with_threads(2);
        let calls = handed(&mut decoder, &tiles).expect("decodes");
        assert_eq!(decoder.last_threads, 2);
        assert!(decoder.last_streamed);
        check(&calls, &expected, tiles.len());
        // Two tiles at one position: every tile in index order (the later drawn last).
        tiles[50].x = 3;
        let calls = handed(&mut decoder, &tiles).expect("decodes");
        assert!(!decoder.last_streamed);
        check(&calls, &expected, tiles.len());
        assert!(calls.iter().map(|(i, _)| *i).eq(0..tiles.len()), "in order");
        // Tiles coded alike: in order too, each with its (shared) pixels.
        tiles[50].x = 50;
        let alike: Vec<_> = (0..60)
            .map(|i| tile(i, 0, &encoded[(i % 7) as usize]))
            .collect();
        let expected_alike = reference(&alike, entropy).expect("reference decodes");
        let calls = handed(&mut decoder, &alike).expect("decodes");
        assert!(!decoder.last_streamed);
        check(&calls, &expected_alike, alike.len());
        assert!(calls.iter().map(|(i, _)| *i).eq(0..alike.len()), "in order");
        // A bad tile fails the frame; the next frame is whole again.
        tiles[70].y_data = &[];
        assert!(matches!(
            handed(&mut decoder, &tiles),
            Err(RfxDecodeError::Rlgr(_))
        ));
        tiles[70].y_data = &encoded[70][0];
        let calls = handed(&mut decoder, &tiles).expect("decodes");
        check(&calls, &expected, tiles.len());
    }

    /// Draws tiles as IronRDP's session does: each decoded by IronRDP, in
    /// order, pixel by pixel where the framebuffer and a clip rectangle
    /// hold it.
    fn reference_drawing(
        tiles: &[Tile<'_>],
        entropy: EntropyAlgorithm,
        origin: (usize, usize),
        clip: &[PixelRect],
        (width, height): (usize, usize),
        frame: &mut [u8],
    ) -> Result<(), RfxDecodeError> {
        let pixels = reference(tiles, entropy)?;
        for (tile, rgba) in tiles.iter().zip(pixels.chunks_exact(TILE_RGBA_LEN)) {
            for (i, pixel) in rgba.chunks_exact(4).enumerate() {
                let x = origin.0 + TILE_SIZE * usize::from(tile.x) + i % TILE_SIZE;
                let y = origin.1 + TILE_SIZE * usize::from(tile.y) + i / TILE_SIZE;
                let inside = |r: &PixelRect| {
                    (r.left..r.right).contains(&x) && (r.top..r.bottom).contains(&y)
                };
                if x < width && y < height && clip.iter().any(inside) {
                    frame[(y * width + x) * 4..][..4].copy_from_slice(pixel);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn tiles_are_drawn_into_a_framebuffer_as_ironrdps_session_draws_them() {
        let entropy = EntropyAlgorithm::Rlgr3;
        let encoded: Vec<_> = (0..60)
            .map(|i| encode(&picture(5 * i + 3), &QUANTS[(i % 2) as usize], entropy))
            .collect();
        // 60 tiles on a 10×6 grid, given in a scrambled order, drawn at an
        // offset into a framebuffer that cuts the right and bottom ones
        // (some wholly outside), through three clip rectangles.
        let mut noise = Noise(0xf00d);
        let mut cells: Vec<u16> = (0..60).collect();
        for i in (1..cells.len()).rev() {
            cells.swap(i, noise.below(i + 1));
        }
        let mut tiles: Vec<_> = cells
            .iter()
            .zip(&encoded)
            .enumerate()
            .map(|(i, (&cell, data))| Tile {
                x: cell % 10,
                y: cell / 10,
                ..tile(0, (i % 2) as u8, data)
            })
            .collect();
        let (width, height) = (500, 300);
        let origin = (37, 21);
        let clip = [
            PixelRect {
                left: 0,
                top: 0,
                right: 500,
                bottom: 140,
            },
            PixelRect {
                left: 60,
                top: 140,
                right: 410,
                bottom: 280,
            },
            // Past the framebuffer's corner: cut to it.
            PixelRect {
                left: 420,
                top: 250,
                right: 900,
                bottom: 900,
            },
        ];
        let background: Vec<u8> = (0..width * height * 4)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let drawn = |decoder: &mut FrameDecoder, tiles: &[Tile<'_>]| {
            let mut frame = background.clone();
            let buffer = Framebuffer {
                data: &mut frame,
                width,
                height,
            };
            decoder
                .decode_to(tiles, &QUANTS, entropy, origin, &clip, buffer)
                .map(|()| frame)
        };
        let expected = |tiles: &[Tile<'_>]| {
            let mut frame = background.clone();
            reference_drawing(tiles, entropy, origin, &clip, (width, height), &mut frame)
                .expect("the reference decodes");
            frame
        };
        let whole = expected(&tiles);
        assert!(whole != background, "something was drawn");
        for threads in [1, 2] {
            let mut decoder = FrameDecoder::with_threads(threads);
            let ours = drawn(&mut decoder, &tiles).expect("decodes");
            assert!(
                decoder.last_direct,
                "distinct tiles go straight to the framebuffer"
            );
            assert_eq!(decoder.last_threads, threads);
            assert!(ours == whole, "{threads} threads");
        }
        let mut decoder = FrameDecoder::with_threads(2);
        // Two tiles at one position: drawn in order, the later one on top.
        tiles[31].x = tiles[12].x;
        tiles[31].y = tiles[12].y;
        let ours = drawn(&mut decoder, &tiles).expect("decodes");
        assert!(!decoder.last_direct);
        assert!(ours == expected(&tiles), "two at one position");
        // Tiles coded alike: decoded once, drawn at each position.
        let alike: Vec<_> = (0..40u16)
            .map(|i| Tile {
                x: i % 8,
                y: i / 8,
                ..tile(0, 0, &encoded[usize::from(i % 3) * 2])
            })
            .collect();
        let ours = drawn(&mut decoder, &alike).expect("decodes");
        assert!(!decoder.last_direct);
        assert!(ours == expected(&alike), "tiles alike");
        // A bad tile fails the frame, even one outside the framebuffer; the
        // next frame is whole again.
        tiles[31].x = 9;
        tiles[31].y = 40;
        tiles[44].cr_data = &[];
        assert!(matches!(
            drawn(&mut decoder, &tiles),
            Err(RfxDecodeError::Rlgr(_))
        ));
        tiles[44].cr_data = &encoded[44][2];
        tiles[31].cb_data = &[];
        assert!(matches!(
            drawn(&mut decoder, &tiles),
            Err(RfxDecodeError::Rlgr(_))
        ));
        tiles[31].cb_data = &encoded[31][1];
        let ours = drawn(&mut decoder, &tiles).expect("decodes");
        assert!(decoder.last_direct);
        assert!(ours == expected(&tiles));
        // No framebuffer at all, and none of the tiles: nothing drawn, no error.
        let buffer = Framebuffer {
            data: &mut [],
            width: 0,
            height: 0,
        };
        decoder
            .decode_to(&tiles, &QUANTS, entropy, origin, &clip, buffer)
            .expect("decodes");
        let frame = drawn(&mut decoder, &[]).expect("nothing to do");
        assert!(frame == background);
    }

    #[test]
    fn more_tiles_than_a_batch_are_refused_without_allocating_for_them() {
        let data = encode(&picture(5), &QUANTS[0], EntropyAlgorithm::Rlgr1);
        let tiles: Vec<_> = (0..=MAX_BATCH_TILES)
            .map(|i| tile(i as u16, 0, &data))
            .collect();
        let mut decoder = FrameDecoder::with_threads(2);
        assert!(matches!(
            decoder.decode(&tiles, &QUANTS, EntropyAlgorithm::Rlgr1),
            Err(RfxDecodeError::TooManyTiles(n)) if n == MAX_BATCH_TILES + 1
        ));
        assert_eq!(decoder.output.capacity(), 0);
        let batch = decoder
            .decode(&tiles[..MAX_BATCH_TILES], &QUANTS, EntropyAlgorithm::Rlgr1)
            .expect("a full batch decodes");
        assert_eq!(batch.len(), MAX_BATCH_TILES * TILE_RGBA_LEN);
    }

    #[test]
    fn an_empty_tile_set_decodes_to_nothing() {
        let mut decoder = FrameDecoder::new();
        assert_eq!(
            decoder
                .decode(&[], &QUANTS, EntropyAlgorithm::Rlgr1)
                .map(<[u8]>::len)
                .ok(),
            Some(0)
        );
    }
}
