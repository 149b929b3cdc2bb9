//! The RDP framebuffer's way out: changed regions of the session image as
//! dirty rectangles of RGBA, coalesced, and a compact binary encoding the
//! desktop app's canvas applies as it is (no JSON arrays of numbers).
//!
//! Encoding (little-endian): `u8 version (1)`, `u8 kind (0 partial, 1 full)`,
//! `u16 width`, `u16 height`, `u16 count`, then `count` times
//! `u16 x, u16 y, u16 w, u16 h` followed by `w*h*4` bytes RGBA, rows top down.

/// A rectangle of the desktop, exclusive of its right and bottom edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl Rect {
    fn right(&self) -> u32 {
        u32::from(self.x) + u32::from(self.width)
    }

    fn bottom(&self) -> u32 {
        u32::from(self.y) + u32::from(self.height)
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Whether the two touch or overlap (touching rectangles merge well).
    fn touches(&self, other: &Rect) -> bool {
        u32::from(self.x) <= other.right()
            && u32::from(other.x) <= self.right()
            && u32::from(self.y) <= other.bottom()
            && u32::from(other.y) <= self.bottom()
    }

    fn union(&self, other: &Rect) -> Rect {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.right().max(other.right());
        let bottom = self.bottom().max(other.bottom());
        Rect {
            x,
            y,
            width: u16::try_from(right - u32::from(x)).unwrap_or(u16::MAX),
            height: u16::try_from(bottom - u32::from(y)).unwrap_or(u16::MAX),
        }
    }

    /// The part inside a `width`×`height` desktop.
    pub fn clamp(&self, width: u16, height: u16) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        let right = self.right().min(u32::from(width));
        let bottom = self.bottom().min(u32::from(height));
        Rect {
            x,
            y,
            width: u16::try_from(right.saturating_sub(u32::from(x))).unwrap_or(0),
            height: u16::try_from(bottom.saturating_sub(u32::from(y))).unwrap_or(0),
        }
    }
}

impl Rect {
    /// The part within rows `top..bottom` (possibly empty).
    fn within_rows(&self, top: u16, bottom: u16) -> Rect {
        let y = self.y.max(top);
        let end = self.bottom().min(u32::from(bottom));
        Rect {
            x: self.x,
            y,
            width: self.width,
            height: u16::try_from(end.saturating_sub(u32::from(y))).unwrap_or(0),
        }
    }
}

/// More rectangles than this in one update are merged into their bounding box.
const MAX_RECTS: usize = 64;

/// Regions changed since the last update was taken.
#[derive(Debug, Default)]
pub struct Damage {
    rects: Vec<Rect>,
}

impl Damage {
    pub fn add(&mut self, rect: Rect) {
        if rect.is_empty() {
            return;
        }
        let mut merged = rect;
        // A new region swallows every region it touches, repeatedly, so the list
        // stays disjoint and short.
        loop {
            let before = self.rects.len();
            self.rects.retain(|r| {
                if r.touches(&merged) {
                    merged = merged.union(r);
                    false
                } else {
                    true
                }
            });
            if self.rects.len() == before {
                break;
            }
        }
        self.rects.push(merged);
        if self.rects.len() > MAX_RECTS {
            let all = self
                .rects
                .iter()
                .skip(1)
                .fold(self.rects[0], |acc, r| acc.union(r));
            self.rects = vec![all];
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    pub fn take(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.rects)
    }
}

pub const FRAME_VERSION: u8 = 1;
const HEADER: usize = 8;
const RECT_HEADER: usize = 8;

/// Encodes `rects` of an RGBA image (`stride` bytes per row) as one update.
/// Alpha is set opaque: the canvas draws what the server shows, never holes.
pub fn encode(
    data: &[u8],
    stride: usize,
    width: u16,
    height: u16,
    rects: &[Rect],
    full: bool,
) -> Vec<u8> {
    let rects: Vec<Rect> = rects
        .iter()
        .map(|r| r.clamp(width, height))
        .filter(|r| !r.is_empty())
        .collect();
    let pixels: u64 = rects.iter().map(Rect::area).sum();
    let size = HEADER + rects.len() * RECT_HEADER + usize::try_from(pixels * 4).unwrap_or(0);
    let mut out = Vec::with_capacity(size);
    out.push(FRAME_VERSION);
    out.push(u8::from(full));
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&u16::try_from(rects.len()).unwrap_or(u16::MAX).to_le_bytes());
    for rect in rects.iter().take(usize::from(u16::MAX)) {
        for value in [rect.x, rect.y, rect.width, rect.height] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        let row_bytes = usize::from(rect.width) * 4;
        for row in rect.y..rect.y + rect.height {
            let start = usize::from(row) * stride + usize::from(rect.x) * 4;
            let Some(src) = data.get(start..start + row_bytes) else {
                // A short image (never expected): pad so the encoding stays well formed.
                out.resize(out.len() + row_bytes, 0);
                continue;
            };
            let at = out.len();
            out.extend_from_slice(src);
            // Whole pixels at a time (this loop vectorizes; a byte stride did not).
            for pixel in out[at..].chunks_exact_mut(4) {
                pixel[3] = 0xFF;
            }
        }
    }
    out
}

/// [`encode`], cut into parts for a big change: each part a complete update
/// of one band of the desktop's rows, the parts encoded at once on threads
/// of their own, so that several cores copy a big change (a full HD frame is
/// 8 MB), not one. Applied in order, the parts draw what one update would;
/// the first carries `full`. A change under about half a million pixels, or
/// a machine with one core, gives one part.
pub fn encode_parts(
    data: &[u8],
    stride: usize,
    width: u16,
    height: u16,
    rects: &[Rect],
    full: bool,
) -> Vec<Vec<u8>> {
    let pixels: u64 = rects.iter().map(|r| r.clamp(width, height).area()).sum();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let parts = usize::try_from(pixels / PIXELS_PER_PART)
        .unwrap_or(MAX_PARTS)
        .clamp(1, MAX_PARTS.min(cores));
    if parts == 1 {
        return vec![encode(data, stride, width, height, rects, full)];
    }
    // Bands of the rows the change spans.
    let rects: Vec<Rect> = rects
        .iter()
        .map(|r| r.clamp(width, height))
        .filter(|r| !r.is_empty())
        .collect();
    let top = rects.iter().map(|r| u32::from(r.y)).min().unwrap_or(0);
    let bottom = rects.iter().map(Rect::bottom).max().unwrap_or(0);
    let row = |i: usize| {
        let span = u64::from(bottom - top) * i as u64 / parts as u64;
        u16::try_from(u64::from(top) + span).unwrap_or(height)
    };
    let band = |i: usize| -> Vec<Rect> {
        rects
            .iter()
            .map(|r| r.within_rows(row(i), row(i + 1)))
            .filter(|r| !r.is_empty())
            .collect()
    };
    // The first band always (it carries `full`); a later one only when the
    // rectangles reach into it (not a gap between them).
    let bands: Vec<Vec<Rect>> = std::iter::once(band(0))
        .chain((1..parts).map(band).filter(|band| !band.is_empty()))
        .collect();
    let encode_band = |i: usize| encode(data, stride, width, height, &bands[i], full && i == 0);
    std::thread::scope(|scope| {
        let encode_band = &encode_band;
        // A thread the system cannot start leaves its band to this one.
        let helpers: Vec<_> = (1..bands.len())
            .map(|i| {
                std::thread::Builder::new()
                    .name("frame-encode".into())
                    .spawn_scoped(scope, move || encode_band(i))
                    .map_err(|_| i)
            })
            .collect();
        let mut encoded = vec![encode_band(0)];
        for helper in helpers {
            encoded.push(match helper {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(i) => encode_band(i),
            });
        }
        encoded
    })
}

/// Pixels of change a part of an update gets, at least (about a
/// millisecond of copying; a thread costs tens of microseconds to start).
const PIXELS_PER_PART: u64 = 512 * 1024;
/// At most this many parts (and threads) for one update.
const MAX_PARTS: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame update too short or malformed: {0}")]
    Malformed(&'static str),
    #[error("frame update version {0} is not understood")]
    Version(u8),
}

/// The receiving side of [`encode`]: an RGBA canvas that updates apply to, as the
/// desktop app's canvas does. Used by tests and the benchmark to look at pixels.
#[derive(Debug, Clone, Default)]
pub struct Canvas {
    pub width: u16,
    pub height: u16,
    pub rgba: Vec<u8>,
}

impl Canvas {
    /// Applies one update; a full update or a size change reallocates.
    pub fn apply(&mut self, update: &[u8]) -> Result<(), FrameError> {
        let header = update
            .get(..HEADER)
            .ok_or(FrameError::Malformed("header"))?;
        if header[0] != FRAME_VERSION {
            return Err(FrameError::Version(header[0]));
        }
        let width = u16::from_le_bytes([header[2], header[3]]);
        let height = u16::from_le_bytes([header[4], header[5]]);
        let count = u16::from_le_bytes([header[6], header[7]]);
        if header[1] == 1 || width != self.width || height != self.height {
            self.width = width;
            self.height = height;
            self.rgba = vec![0; usize::from(width) * usize::from(height) * 4];
        }
        let mut at = HEADER;
        for _ in 0..count {
            let h = update
                .get(at..at + RECT_HEADER)
                .ok_or(FrameError::Malformed("rectangle header"))?;
            let field = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
            let rect = Rect {
                x: field(0),
                y: field(2),
                width: field(4),
                height: field(6),
            };
            at += RECT_HEADER;
            if rect.clamp(width, height) != rect {
                return Err(FrameError::Malformed("rectangle outside the desktop"));
            }
            let row_bytes = usize::from(rect.width) * 4;
            for row in 0..usize::from(rect.height) {
                let src = update
                    .get(at..at + row_bytes)
                    .ok_or(FrameError::Malformed("pixels"))?;
                let dst =
                    (usize::from(rect.y) + row) * usize::from(width) * 4 + usize::from(rect.x) * 4;
                self.rgba[dst..dst + row_bytes].copy_from_slice(src);
                at += row_bytes;
            }
        }
        if at != update.len() {
            return Err(FrameError::Malformed("trailing bytes"));
        }
        Ok(())
    }

    /// `[r, g, b, a]` at a point, when inside.
    pub fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        self.rgba.get(at..at + 4).map(|p| [p[0], p[1], p[2], p[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u16, y: u16, width: u16, height: u16) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn damage_merges_touching_regions_and_keeps_apart_the_rest() {
        let mut damage = Damage::default();
        damage.add(rect(0, 0, 10, 10));
        damage.add(rect(10, 0, 10, 10));
        damage.add(rect(100, 100, 5, 5));
        damage.add(rect(0, 0, 0, 7));
        let mut rects = damage.take();
        rects.sort_by_key(|r| r.x);
        assert_eq!(rects, vec![rect(0, 0, 20, 10), rect(100, 100, 5, 5)]);
        assert!(damage.is_empty());
        // A region bridging two others merges all three.
        damage.add(rect(0, 0, 5, 5));
        damage.add(rect(50, 0, 5, 5));
        damage.add(rect(4, 0, 47, 2));
        assert_eq!(damage.take(), vec![rect(0, 0, 55, 5)]);
    }

    #[test]
    fn damage_collapses_a_storm_into_one_box() {
        let mut damage = Damage::default();
        for i in 0..200u16 {
            damage.add(rect(i * 3, i * 3, 1, 1));
        }
        let rects = damage.take();
        assert!(rects.len() <= MAX_RECTS, "{}", rects.len());
        let covered = rects.iter().fold(rects[0], |a, r| a.union(r));
        assert_eq!(covered, rect(0, 0, 598, 598));
    }

    #[test]
    fn encoded_updates_rebuild_the_image_on_a_canvas() {
        let (width, height) = (7u16, 5u16);
        let stride = usize::from(width) * 4;
        let mut image = vec![0u8; stride * usize::from(height)];
        for (i, byte) in image.iter_mut().enumerate() {
            *byte = if i % 4 == 3 { 0 } else { (i % 251) as u8 };
        }
        let full = encode(
            &image,
            stride,
            width,
            height,
            &[rect(0, 0, width, height)],
            true,
        );
        let mut canvas = Canvas::default();
        canvas.apply(&full).unwrap();
        assert_eq!(canvas.pixel(1, 0), Some([4, 5, 6, 255]));
        assert_eq!(canvas.pixel(7, 0), None);
        for (i, byte) in image.iter_mut().enumerate() {
            *byte = (i % 7) as u8;
        }
        let partial = encode(
            &image,
            stride,
            width,
            height,
            &[rect(2, 1, 3, 2), rect(6, 4, 9, 9)],
            false,
        );
        assert_eq!(partial.len(), HEADER + 2 * RECT_HEADER + (3 * 2 + 1) * 4);
        canvas.apply(&partial).unwrap();
        let at = |x: usize, y: usize| (y * usize::from(width) + x) * 4;
        let p = at(3, 2);
        assert_eq!(
            canvas.pixel(3, 2),
            Some([(p % 7) as u8, ((p + 1) % 7) as u8, ((p + 2) % 7) as u8, 255])
        );
        // Outside the damage the old pixels stay.
        assert_eq!(canvas.pixel(1, 0), Some([4, 5, 6, 255]));
    }

    #[test]
    fn a_big_change_in_parts_draws_what_one_update_draws() {
        // Three rectangles, one cut by the desktop's edge, over a million
        // pixels: parts when the machine has cores to copy them.
        let (width, height) = (1500u16, 1000u16);
        let stride = usize::from(width) * 4 + 12;
        let image: Vec<u8> = (0..stride * usize::from(height))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let rects = [
            rect(0, 0, width, 700),
            rect(10, 650, 1000, 300),
            rect(1400, 900, 200, 200),
        ];
        let whole = encode(&image, stride, width, height, &rects, true);
        let parts = encode_parts(&image, stride, width, height, &rects, true);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        if cores > 1 {
            assert!(parts.len() > 1, "{cores} cores, {} part", parts.len());
        } else {
            eprintln!("one core: the change stays one update, its parts go unchecked");
            assert_eq!(parts.len(), 1);
        }
        // Only the first part is full.
        assert!(
            parts
                .iter()
                .enumerate()
                .all(|(i, part)| part[1] == u8::from(i == 0))
        );
        let (mut one, mut several) = (Canvas::default(), Canvas::default());
        one.apply(&whole).expect("the update applies");
        for part in &parts {
            several.apply(part).expect("each part applies");
        }
        assert_eq!((several.width, several.height), (width, height));
        assert!(
            several.rgba == one.rgba,
            "the parts draw what one update draws"
        );
        assert!(
            one.pixel(1450, 950).is_some_and(|p| p[3] == 0xff),
            "drawn, opaque"
        );
        assert_eq!(one.pixel(5, 800), Some([0, 0, 0, 0]), "outside the change");
        // A small change is one part.
        let small = encode_parts(
            &image,
            stride,
            width,
            height,
            &[rect(3, 4, 100, 100)],
            false,
        );
        assert_eq!(small.len(), 1);
        assert_eq!(
            small[0],
            encode(
                &image,
                stride,
                width,
                height,
                &[rect(3, 4, 100, 100)],
                false
            )
        );
    }

    #[test]
    fn the_canvas_refuses_malformed_updates_without_panicking() {
        let image = vec![9u8; 4 * 4 * 4];
        let good = encode(&image, 16, 4, 4, &[rect(0, 0, 4, 4)], true);
        let mut canvas = Canvas::default();
        for cut in 0..good.len() {
            assert!(canvas.apply(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut outside = good.clone();
        outside[8] = 3; // x = 3 with width 4 leaves the desktop
        assert_eq!(
            canvas.apply(&outside),
            Err(FrameError::Malformed("rectangle outside the desktop"))
        );
        let mut version = good.clone();
        version[0] = 9;
        assert_eq!(canvas.apply(&version), Err(FrameError::Version(9)));
        let mut trailing = good;
        trailing.push(0);
        assert!(canvas.apply(&trailing).is_err());
    }
}
