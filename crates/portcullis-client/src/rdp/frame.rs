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
