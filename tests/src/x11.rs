//! Just enough of the X11 protocol, over the display's Unix socket, for the
//! lab's Xvfb displays (no authorization): paint the root window a solid
//! colour (as `xsetroot -solid` does, without a process per change) and take
//! a PNG of the whole screen (what a person at that display sees).

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
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl X11 {
    /// Connects to `display` (":N").
    pub fn connect(display: &str) -> std::io::Result<X11> {
        let number = display.trim_start_matches(':');
        let mut socket = UnixStream::connect(format!("/tmp/.X11-unix/X{number}"))?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        // Setup request: little-endian, protocol 11.0, no authorization.
        socket.write_all(&[b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0])?;
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
            socket,
        })
    }

    /// Sends `requests`, then a GetInputFocus whose reply ends the round trip;
    /// returns the reply to the first request that has one.
    fn round_trip(&mut self, requests: &[u8]) -> std::io::Result<Vec<u8>> {
        self.socket.write_all(requests)?;
        let mut reply = [0u8; 32];
        self.socket.read_exact(&mut reply)?;
        match reply[0] {
            1 => {
                let extra =
                    usize::try_from(u32_at(&reply, 4).unwrap_or(0)).map_err(Error::other)? * 4;
                let mut whole = reply.to_vec();
                whole.resize(32 + extra, 0);
                self.socket.read_exact(&mut whole[32..])?;
                Ok(whole)
            }
            0 => Err(Error::other(format!(
                "X error {} on request {}",
                reply[1], reply[10]
            ))),
            _ => Err(Error::other("an unexpected X event")),
        }
    }

    /// Paints the root window `rgb` (a 24-bit TrueColor display) and waits
    /// until the server has.
    pub fn paint_root(&mut self, rgb: [u8; 3]) -> std::io::Result<()> {
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

    /// A PNG of the whole screen at `path`.
    pub fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
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
        let rgb: Vec<u8> = pixels
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
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
}
