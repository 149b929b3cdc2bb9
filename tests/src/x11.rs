//! Just enough of the X11 protocol, over the display's Unix socket, for the
//! lab's Xvfb displays (no authorization) and xrdp sessions (the session's
//! MIT-MAGIC-COOKIE-1 from its `.Xauthority`): paint the root window a solid
//! colour (as `xsetroot -solid` does, without a process per change), draw a
//! screen of text-like marks (a terminal scrolling, for the RDP benchmark) and
//! take a PNG of the whole screen (what a person at that display sees).

use std::io::{Error, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One connection to an X display.
pub struct X11 {
    socket: UnixStream,
    root: u32,
    width: u16,
    height: u16,
    /// The first of the resource ids the server gave this connection.
    id_base: u32,
    /// A graphics context on the root window, made when first drawn with.
    gc: Option<u32>,
    /// The page line at the top of the screen when [`X11::paint_text`] last
    /// drew it (and nothing has been drawn since), so the next line scrolls.
    text_line: Option<usize>,
}

const COOKIE: &[u8] = b"MIT-MAGIC-COOKIE-1";

/// The MIT-MAGIC-COOKIE-1 for display `number` in an `.Xauthority` file's
/// bytes: records of family (2 bytes), then address, display number, name and
/// data, each a big-endian 2-byte length and its bytes.
fn cookie_for(file: &[u8], number: &str) -> Option<Vec<u8>> {
    fn field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let value = rest.get(2..2 + len)?;
        *rest = &rest[2 + len..];
        Some(value)
    }
    let mut rest = file;
    while rest.len() >= 2 {
        rest = &rest[2..];
        let _address = field(&mut rest)?;
        let display = field(&mut rest)?;
        let name = field(&mut rest)?;
        let data = field(&mut rest)?;
        if display == number.as_bytes() && name == COOKIE {
            return Some(data.to_vec());
        }
    }
    None
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl X11 {
    /// Connects to `display` (":N"), with no authorization.
    pub fn connect(display: &str) -> std::io::Result<X11> {
        X11::connect_as(display, None)
    }

    /// Connects to `display` (":N", or ":N.S" as xrdp's sessions name theirs:
    /// screen S of display N, and these displays have one screen), with the
    /// display's MIT-MAGIC-COOKIE-1 from the `xauthority` file when given.
    pub fn connect_as(display: &str, xauthority: Option<&Path>) -> std::io::Result<X11> {
        let number = display.trim_start_matches(':');
        let number = number.split_once('.').map_or(number, |(number, _)| number);
        let cookie = match xauthority {
            Some(file) => Some(cookie_for(&std::fs::read(file)?, number).ok_or_else(|| {
                Error::other(format!(
                    "{}: no MIT-MAGIC-COOKIE-1 for display {number}",
                    file.display()
                ))
            })?),
            None => None,
        };
        let mut socket = UnixStream::connect(format!("/tmp/.X11-unix/X{number}"))?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        // Setup request: little-endian, protocol 11.0, the authorization's
        // name and data lengths, then both padded to 4 bytes.
        let (name, data): (&[u8], &[u8]) = match &cookie {
            Some(cookie) => (COOKIE, cookie),
            None => (b"", b""),
        };
        let mut setup = vec![b'l', 0, 11, 0, 0, 0];
        setup.extend_from_slice(
            &u16::try_from(name.len())
                .map_err(Error::other)?
                .to_le_bytes(),
        );
        setup.extend_from_slice(
            &u16::try_from(data.len())
                .map_err(Error::other)?
                .to_le_bytes(),
        );
        setup.extend_from_slice(&[0, 0]);
        for part in [name, data] {
            setup.extend_from_slice(part);
            setup.resize(setup.len().div_ceil(4) * 4, 0);
        }
        socket.write_all(&setup)?;
        let mut head = [0u8; 8];
        socket.read_exact(&mut head)?;
        let extra = usize::from(u16::from_le_bytes([head[6], head[7]])) * 4;
        let mut setup = vec![0u8; extra];
        socket.read_exact(&mut setup)?;
        if head[0] != 1 {
            return Err(Error::other(format!(
                "the X server refused the connection: {}",
                String::from_utf8_lossy(&setup)
            )));
        }
        // After the fixed 32 bytes: the vendor string (padded to 4) and 8-byte
        // pixmap formats, then the first screen: root window, then at 20 and 22
        // its width and height in pixels.
        let vendor = usize::from(u16_at(&setup, 16).unwrap_or(0));
        let formats = usize::from(setup.get(21).copied().unwrap_or(0));
        let screen = 32 + vendor.div_ceil(4) * 4 + formats * 8;
        let missing = || Error::other("an X setup reply without a screen");
        Ok(X11 {
            root: u32_at(&setup, screen).ok_or_else(missing)?,
            width: u16_at(&setup, screen + 20).ok_or_else(missing)?,
            height: u16_at(&setup, screen + 22).ok_or_else(missing)?,
            id_base: u32_at(&setup, 4).ok_or_else(missing)?,
            gc: None,
            text_line: None,
            socket,
        })
    }

    /// Sends `requests`, then a GetInputFocus whose reply ends the round trip;
    /// returns the reply to the first request that has one.
    fn round_trip(&mut self, requests: &[u8]) -> std::io::Result<Vec<u8>> {
        self.socket.write_all(requests)?;
        let mut reply = [0u8; 32];
        self.socket.read_exact(&mut reply)?;
        // Events this connection never asked for still come (MappingNotify goes
        // to every client when xrdp sets the session's keyboard): skip them,
        // and a GenericEvent's extra bytes with them.
        while reply[0] >= 2 {
            if reply[0] & 0x7f == 35 {
                let extra =
                    usize::try_from(u32_at(&reply, 4).unwrap_or(0)).map_err(Error::other)? * 4;
                std::io::copy(
                    &mut (&mut self.socket).take(extra as u64),
                    &mut std::io::sink(),
                )?;
            }
            self.socket.read_exact(&mut reply)?;
        }
        match reply[0] {
            1 => {
                let extra =
                    usize::try_from(u32_at(&reply, 4).unwrap_or(0)).map_err(Error::other)? * 4;
                let mut whole = reply.to_vec();
                whole.resize(32 + extra, 0);
                self.socket.read_exact(&mut whole[32..])?;
                Ok(whole)
            }
            _ => Err(Error::other(format!(
                "X error {} on request {}",
                reply[1], reply[10]
            ))),
        }
    }

    /// Paints the root window `rgb` (a 24-bit TrueColor display) and waits
    /// until the server has.
    pub fn paint_root(&mut self, rgb: [u8; 3]) -> std::io::Result<()> {
        self.text_line = None;
        let pixel = u32::from_be_bytes([0, rgb[0], rgb[1], rgb[2]]);
        let mut requests = Vec::with_capacity(36);
        // ChangeWindowAttributes(root, CWBackPixel = pixel): opcode 2, 4 words.
        requests.extend_from_slice(&[2, 0, 4, 0]);
        requests.extend_from_slice(&self.root.to_le_bytes());
        requests.extend_from_slice(&2u32.to_le_bytes());
        requests.extend_from_slice(&pixel.to_le_bytes());
        // ClearArea(root, the whole window, no exposures): opcode 61, 4 words.
        requests.extend_from_slice(&[61, 0, 4, 0]);
        requests.extend_from_slice(&self.root.to_le_bytes());
        requests.extend_from_slice(&[0; 8]);
        // GetInputFocus: opcode 43, 1 word.
        requests.extend_from_slice(&[43, 0, 1, 0]);
        self.round_trip(&requests).map(drop)
    }

    /// Fills the whole screen with text-like marks, as a full-screen terminal
    /// shows them: light background, dark "glyphs" (6×10 marks on a 9×16
    /// cell grid, about four in five cells inked), the page scrolled by
    /// `line` text lines; and a 32×32 square of `probe` at the centre (the
    /// pixel a benchmark watches). Waits until the server has drawn it.
    ///
    /// When the screen shows `line - 1` it scrolls as a terminal does: the
    /// screen is copied up a line (CopyArea) and only the new bottom line
    /// and the lines under the probe are drawn. Every pixel row still moves,
    /// so every tile of the screen changes.
    pub fn paint_text(&mut self, line: usize, probe: [u8; 3]) -> std::io::Result<()> {
        use portcullis_rfx::sample::{TEXT_CELL as CELL, TEXT_INK as INK, TEXT_PAPER as PAPER};
        let gc = self.graphics_context()?;
        let (width, height) = (self.width, self.height);
        let rows = height / CELL.1;
        let centre = [width / 2 - 16, height / 2 - 16, 32, 32];
        let mut requests = Vec::with_capacity(64 * 1024);
        let fill = |requests: &mut Vec<u8>, rgb: [u8; 3], rects: &[[u16; 4]]| {
            // ChangeGC(gc, GCForeground): opcode 56, 4 words.
            requests.extend_from_slice(&[56, 0, 4, 0]);
            requests.extend_from_slice(&gc.to_le_bytes());
            requests.extend_from_slice(&4u32.to_le_bytes());
            requests
                .extend_from_slice(&u32::from_be_bytes([0, rgb[0], rgb[1], rgb[2]]).to_le_bytes());
            // PolyFillRectangle(root, gc, rects): opcode 70, 3 + 2n words.
            for chunk in rects.chunks(30_000) {
                let words = u16::try_from(3 + 2 * chunk.len()).expect("under 65 536 words");
                requests.extend_from_slice(&[70, 0]);
                requests.extend_from_slice(&words.to_le_bytes());
                requests.extend_from_slice(&self.root.to_le_bytes());
                requests.extend_from_slice(&gc.to_le_bytes());
                for rect in chunk {
                    for value in rect {
                        requests.extend_from_slice(&value.to_le_bytes());
                    }
                }
            }
        };
        // The screen rows to draw from the page: all of them, or after a
        // scroll the bottom one and those the old and new probe cover.
        let scrolls = line > 0 && self.text_line == Some(line - 1);
        let redraw: Vec<u16> = if scrolls {
            // CopyArea(root → root, gc, from (0, 16) to (0, 0)): opcode 62, 7 words.
            requests.extend_from_slice(&[62, 0, 7, 0]);
            requests.extend_from_slice(&self.root.to_le_bytes());
            requests.extend_from_slice(&self.root.to_le_bytes());
            requests.extend_from_slice(&gc.to_le_bytes());
            for value in [0, CELL.1, 0, 0, width, rows * CELL.1 - CELL.1] {
                requests.extend_from_slice(&value.to_le_bytes());
            }
            // The old probe, copied a line up, and the new one.
            let first = centre[1].saturating_sub(CELL.1) / CELL.1;
            let last = ((centre[1] + centre[3]).div_ceil(CELL.1)).min(rows);
            let mut redraw: Vec<u16> = (first..last).collect();
            redraw.push(rows - 1);
            redraw
        } else {
            (0..rows).collect()
        };
        let mut paper = Vec::new();
        let mut glyphs = Vec::new();
        for &row in &redraw {
            paper.push([0, row * CELL.1, width, CELL.1]);
            glyphs.extend(
                (0..width / CELL.0)
                    .filter_map(|column| portcullis_rfx::sample::text_glyph(row, column, line)),
            );
        }
        if !scrolls {
            // Below the last whole text row.
            paper.push([0, rows * CELL.1, width, height - rows * CELL.1]);
        }
        fill(&mut requests, PAPER, &paper);
        fill(&mut requests, INK, &glyphs);
        fill(&mut requests, probe, &[centre]);
        // GetInputFocus: opcode 43, 1 word.
        requests.extend_from_slice(&[43, 0, 1, 0]);
        self.round_trip(&requests)?;
        self.text_line = Some(line);
        Ok(())
    }

    /// The connection's graphics context on the root window (made once).
    fn graphics_context(&mut self) -> std::io::Result<u32> {
        if let Some(gc) = self.gc {
            return Ok(gc);
        }
        let gc = self.id_base | 1;
        // CreateGC(gc, root, GCGraphicsExposures = off, so CopyArea sends no
        // events): opcode 55, 5 words.
        let mut request = vec![55, 0, 5, 0];
        request.extend_from_slice(&gc.to_le_bytes());
        request.extend_from_slice(&self.root.to_le_bytes());
        request.extend_from_slice(&0x0001_0000u32.to_le_bytes());
        request.extend_from_slice(&0u32.to_le_bytes());
        // A round trip, so an error shows here rather than at the first drawing.
        request.extend_from_slice(&[43, 0, 1, 0]);
        self.round_trip(&request)?;
        self.gc = Some(gc);
        Ok(gc)
    }

    /// A PNG of the whole screen at `path`.
    pub fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let rgb = self.pixels()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, u32::from(self.width), u32::from(self.height));
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&rgb)?;
        Ok(())
    }

    /// The whole screen, row after row of R, G, B.
    pub fn pixels(&mut self) -> anyhow::Result<Vec<u8>> {
        // GetImage(ZPixmap, root, 0, 0, width, height, all planes): opcode 73, 5 words.
        let mut request = vec![73, 2, 5, 0];
        request.extend_from_slice(&self.root.to_le_bytes());
        request.extend_from_slice(&[0; 4]);
        request.extend_from_slice(&self.width.to_le_bytes());
        request.extend_from_slice(&self.height.to_le_bytes());
        request.extend_from_slice(&u32::MAX.to_le_bytes());
        let reply = self.round_trip(&request)?;
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        // Depth 24 in 32 bits a pixel, in our (little-endian) byte order: B, G, R, unused.
        let pixels = reply
            .get(32..32 + width * height * 4)
            .ok_or_else(|| anyhow::anyhow!("a short GetImage reply (depth {})", reply[1]))?;
        Ok(pixels
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(display: &str, name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = vec![1, 0];
        for field in [b"host".as_slice(), display.as_bytes(), name, data] {
            out.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    #[test]
    fn the_cookie_is_the_one_for_the_display_asked() {
        let mut file = record("10", COOKIE, b"ten");
        file.extend(record("11", b"XDM-AUTHORIZATION-1", b"other"));
        file.extend(record("11", COOKIE, b"eleven"));
        assert_eq!(
            cookie_for(&file, "11").as_deref(),
            Some(b"eleven".as_slice())
        );
        assert_eq!(cookie_for(&file, "10").as_deref(), Some(b"ten".as_slice()));
        assert_eq!(cookie_for(&file, "12"), None);
        // A cut file gives no cookie, not a panic.
        assert_eq!(cookie_for(&file[..file.len() - 3], "11"), None);
    }

    /// Scrolling (CopyArea and a few lines drawn) shows exactly the page a full
    /// redraw of the same line shows, probe included, on a real Xvfb.
    #[test]
    fn scrolled_text_matches_a_full_redraw() {
        for geometry in ["1024x768x24", "1920x1080x24"] {
            let (mut xvfb, display) = crate::start_xvfb(geometry);
            let mut scrolled = X11::connect(&display).expect("connect");
            for line in 0..5 {
                scrolled
                    .paint_text(line, [0x10 * line as u8, 0x80, 0x40])
                    .expect("paint");
            }
            assert_eq!(scrolled.text_line, Some(4));
            let after_scrolling = scrolled.pixels().expect("pixels");
            let mut fresh = X11::connect(&display).expect("connect");
            fresh.paint_root([0, 0, 0]).expect("clear");
            fresh.paint_text(4, [0x40, 0x80, 0x40]).expect("paint");
            let redrawn = fresh.pixels().expect("pixels");
            let _ = xvfb.kill();
            let _ = xvfb.wait();
            let (width, height) = (scrolled.width as usize, scrolled.height as usize);
            assert_eq!(after_scrolling.len(), width * height * 3);
            let differ = after_scrolling
                .chunks_exact(3)
                .zip(redrawn.chunks_exact(3))
                .position(|(a, b)| a != b);
            assert_eq!(
                differ.map(|i| (i % width, i / width)),
                None,
                "{geometry}: the first pixel that differs"
            );
            // It is text: paper, ink and the probe are all there.
            for colour in [[0xf4, 0xf4, 0xf0], [0x20, 0x24, 0x2c], [0x40, 0x80, 0x40]] {
                assert!(
                    redrawn.chunks_exact(3).any(|p| p == colour),
                    "{geometry}: no pixel of {colour:?}"
                );
            }
        }
    }
}
