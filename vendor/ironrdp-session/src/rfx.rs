use core::cmp::min;

use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_graphics::rectangle_processing::Region;
use ironrdp_graphics::rfx::TILE_SIZE;
use portcullis_rfx::{FrameDecoder, Framebuffer, MAX_BATCH_TILES, PixelRect};
use ironrdp_pdu::codecs::rfx::{self, EntropyAlgorithm, RfxRectangle, Tile};
use ironrdp_pdu::geometry::{InclusiveRectangle, Rectangle as _};
use ironrdp_pdu::{Decode as _, ReadCursor, decode_cursor};
use tracing::{instrument, trace};

use crate::image::DecodedImage;
use crate::{SessionResult, custom_err, general_err, reason_err};

pub type FrameId = u32;

pub struct DecodingContext {
    context: rfx::ContextPdu,
    channels: rfx::ChannelsPdu,
    // Portcullis: a frame's tiles are decoded together (on several cores) by
    // portcullis-rfx, and drawn straight into the image by the threads that
    // decode them.
    frame_decoder: FrameDecoder,
    // Portcullis: the headers came before a deactivation-reactivation (see
    // `carry_over`); frames are sized by the new desktop until new ones come.
    carried_over: bool,
}

impl Default for DecodingContext {
    fn default() -> Self {
        Self {
            context: rfx::ContextPdu {
                flags: rfx::OperatingMode::empty(),
                entropy_algorithm: EntropyAlgorithm::Rlgr1,
            },
            channels: rfx::ChannelsPdu(Vec::new()),
            frame_decoder: FrameDecoder::new(),
            carried_over: false,
        }
    }
}

impl DecodingContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// (Portcullis) This context for the desktop of a deactivation-reactivation.
    ///
    /// A server may go on with the RemoteFX stream it had started without sending
    /// its headers (sync, context, channels) again, or send them in a frame that
    /// arrived while the client was still reactivating and could not draw it. A
    /// fresh context then fails every frame ("no RFX channel found"): xrdp does
    /// this when the client resizes its desktop. The codec context (entropy
    /// algorithm) carries over; the channel's size, which only bounds the frames,
    /// is taken from the new desktop's image until the server sends headers again.
    pub fn carry_over(mut self) -> Self {
        self.carried_over = !self.channels.0.is_empty();
        self
    }

    pub fn decode(
        &mut self,
        image: &mut DecodedImage,
        destination: &InclusiveRectangle,
        input: &mut ReadCursor<'_>,
    ) -> SessionResult<(FrameId, InclusiveRectangle)> {
        loop {
            let block = rfx::Block::decode(input).map_err(|e| custom_err!("decode block", e))?;

            match block {
                rfx::Block::Sync(_) => {
                    self.process_sync(input)?;
                }
                rfx::Block::CodecChannel(rfx::CodecChannel::FrameBegin(f)) => {
                    return self.process_frame(f, input, image, destination);
                }
                _ => {
                    return Err(reason_err!(
                        "rfx::DecodingContext",
                        "unexpected RFX block type: {:?}",
                        block.block_type()
                    ));
                }
            }
        }
    }

    fn process_sync(&mut self, input: &mut ReadCursor<'_>) -> SessionResult<()> {
        self.process_headers(input)
    }

    fn process_headers(&mut self, input: &mut ReadCursor<'_>) -> SessionResult<()> {
        let mut context = None;
        let mut channels = None;

        // headers can appear in any order: CodecVersions, Channels, Context
        for _ in 0..3 {
            match decode_cursor(input).map_err(|e| custom_err!("decode headers", e))? {
                rfx::Block::CodecChannel(rfx::CodecChannel::Context(c)) => context = Some(c),
                rfx::Block::Channels(c) => channels = Some(c),
                rfx::Block::CodecVersions(_) => (),
                _ => {
                    return Err(general_err!("unexpected RFX block type"));
                }
            }
        }

        let context = context.ok_or_else(|| general_err!("context header is missing"))?;
        let channels = channels.ok_or_else(|| general_err!("channels header is missing"))?;

        if channels.0.is_empty() {
            return Err(general_err!("no RFX channel announced"));
        }

        self.context = context;
        self.channels = channels;
        self.carried_over = false;

        Ok(())
    }

    #[instrument(skip_all)]
    fn process_frame(
        &mut self,
        frame_begin: rfx::FrameBeginPdu,
        input: &mut ReadCursor<'_>,
        image: &mut DecodedImage,
        destination: &InclusiveRectangle,
    ) -> SessionResult<(FrameId, InclusiveRectangle)> {
        let channel = self
            .channels
            .0
            .first()
            .ok_or_else(|| general_err!("no RFX channel found"))?;
        let (width, height) = if self.carried_over {
            (image.width(), image.height())
        } else {
            (
                channel.width.try_into().map_err(|_| general_err!("invalid width"))?,
                channel.height.try_into().map_err(|_| general_err!("invalid height"))?,
            )
        };
        let entropy_algorithm = self.context.entropy_algorithm;

        let region: rfx::Block<'_> = decode_cursor(input).map_err(|e| custom_err!("decode region", e))?;
        let mut region = match region {
            rfx::Block::CodecChannel(rfx::CodecChannel::Region(region)) => region,
            _ => return Err(general_err!("unexpected block type")),
        };
        let tile_set: rfx::Block<'_> = decode_cursor(input).map_err(|e| custom_err!("decode tile_set", e))?;
        let tile_set = match tile_set {
            rfx::Block::CodecChannel(rfx::CodecChannel::TileSet(t)) => t,
            _ => return Err(general_err!("unexpected block type")),
        };
        let frame_end: rfx::Block<'_> = decode_cursor(input).map_err(|e| custom_err!("decode frame_end", e))?;
        if !matches!(frame_end, rfx::Block::CodecChannel(rfx::CodecChannel::FrameEnd(_))) {
            return Err(general_err!("unexpected block type"));
        }

        if region.rectangles.is_empty() {
            region.rectangles = vec![RfxRectangle {
                x: 0,
                y: 0,
                width,
                height,
            }];
        }
        let region = region;

        trace!(frame_index = frame_begin.index);
        trace!(destination_rectangle = ?destination);
        trace!(context = ?self.context);
        trace!(channels = ?self.channels);
        trace!(?region);

        let clipping_rectangles = clipping_rectangles(region.rectangles.as_slice(), destination, width, height);
        trace!("Clipping rectangles: {:?}", clipping_rectangles);

        let mut final_update_rectangle = clipping_rectangles.extents.clone();

        // Portcullis: tiles decoded a batch at a time (on several cores) and
        // drawn straight into the image where it is RGBA, as the tiles are:
        // the same pixels `apply_tile` copies, clipped alike (see
        // `FrameDecoder::decode_to`). Elsewhere each decoded tile is applied
        // as IronRDP did, as soon as its run of tiles is decoded. A batch's
        // pixels are bounded in size.
        let clip: Vec<PixelRect> = clipping_rectangles
            .rectangles
            .iter()
            .map(|r| PixelRect {
                left: usize::from(r.left),
                top: usize::from(r.top),
                right: usize::from(r.right) + 1,
                bottom: usize::from(r.bottom) + 1,
            })
            .collect();
        let origin = (usize::from(destination.left), usize::from(destination.top));
        for tiles in tile_set.tiles.chunks(MAX_BATCH_TILES) {
            let frame_decoder = &mut self.frame_decoder;
            let drawn = image.draw_rgba_tiles(&clipping_rectangles, |frame: Option<Framebuffer<'_>>| {
                match frame {
                    Some(frame) => frame_decoder.decode_to(tiles, &tile_set.quants, entropy_algorithm, origin, &clip, frame),
                    // Outside the image: decoded all the same, for its errors.
                    None => frame_decoder.decode_each(tiles, &tile_set.quants, entropy_algorithm, |_, _| {}),
                }
                .map_err(|e| custom_err!("decode_tile", e))
            });
            if let Some(drawn) = drawn {
                final_update_rectangle = final_update_rectangle.union(&drawn?);
                continue;
            }
            let rectangles: Vec<InclusiveRectangle> = tiles_to_rectangles(tiles, destination).collect();
            let mut applied: SessionResult<()> = Ok(());
            self.frame_decoder
                .decode_each(tiles, &tile_set.quants, entropy_algorithm, |index, tile_output| {
                    if applied.is_err() {
                        return;
                    }
                    match image.apply_tile(tile_output, PixelFormat::RgbA32, &clipping_rectangles, &rectangles[index]) {
                        Ok(current_update_rectangle) => {
                            final_update_rectangle = final_update_rectangle.union(&current_update_rectangle);
                        }
                        Err(e) => applied = Err(e),
                    }
                })
                .map_err(|e| custom_err!("decode_tile", e))?;
            applied?;
        }

        Ok((frame_begin.index, final_update_rectangle))
    }
}

fn clipping_rectangles(
    rectangles: &[RfxRectangle],
    destination: &InclusiveRectangle,
    width: u16,
    height: u16,
) -> Region {
    let mut clipping_rectangles = Region::new();

    // Portcullis: the server's numbers are not trusted. The sums saturate (a
    // `u16` overflow panicked in debug builds and wrapped in release ones, a
    // zero-width rectangle at x = 0 then reaching the desktop's right edge),
    // and an empty rectangle clips nothing.
    let last_x = destination.left.saturating_add(width.saturating_sub(1));
    let last_y = destination.top.saturating_add(height.saturating_sub(1));
    rectangles
        .iter()
        .filter(|r| r.width > 0 && r.height > 0)
        .map(|r| {
            let left = destination.left.saturating_add(r.x);
            let top = destination.top.saturating_add(r.y);
            InclusiveRectangle {
                left: min(left, last_x),
                top: min(top, last_y),
                right: min(left.saturating_add(r.width - 1), last_x),
                bottom: min(top.saturating_add(r.height - 1), last_y),
            }
        })
        .for_each(|r| clipping_rectangles.union_rectangle(r));

    clipping_rectangles
}

fn tiles_to_rectangles<'a>(
    tiles: &'a [Tile<'_>],
    destination: &'a InclusiveRectangle,
) -> impl Iterator<Item = InclusiveRectangle> + 'a {
    // Portcullis: saturating, as in `clipping_rectangles` (a tile index past
    // 1023 overflowed); such a tile lies outside every clipping rectangle.
    tiles.iter().map(|t| {
        let left = destination.left.saturating_add(t.x.saturating_mul(TILE_SIZE));
        let top = destination.top.saturating_add(t.y.saturating_mul(TILE_SIZE));
        InclusiveRectangle {
            left,
            top,
            right: left.saturating_add(TILE_SIZE - 1),
            bottom: top.saturating_add(TILE_SIZE - 1),
        }
    })
}

#[cfg(test)]
mod tests {
    use ironrdp_pdu::codecs::rfx::RfxRectangle;
    use ironrdp_pdu::geometry::InclusiveRectangle;

    use super::clipping_rectangles;

    /// A RemoteFX surface for a secondary monitor is placed at a non-zero
    /// framebuffer offset, and its channel (frame) dimensions describe only
    /// that surface's own content rather than the entire desktop.
    #[test]
    fn clipping_rectangles_track_surface_framebuffer_offset() {
        // Update for a second monitor with origin (2000, 1000) and dimensions 1000x1200
        let destination = InclusiveRectangle {
            left: 2000,
            top: 1000,
            right: 2999,
            bottom: 2199,
        };
        let channel_width = 1000;
        let channel_height = 1200;

        let rects = [RfxRectangle {
            x: 0,
            y: 0,
            width: channel_width,
            height: channel_height,
        }];

        let region = clipping_rectangles(&rects, &destination, channel_width, channel_height);

        assert_eq!(
            region.extents.left, 2000,
            "clip collapsed away from the surface's framebuffer position (left)"
        );
        assert_eq!(
            region.extents.right, 2999,
            "clip collapsed away from the surface's framebuffer position (right)"
        );
        assert_eq!(
            region.extents.top, 1000,
            "clip collapsed away from the surface's framebuffer position (top)"
        );
        assert_eq!(
            region.extents.bottom, 2199,
            "clip collapsed away from the surface's framebuffer position (bottom)"
        );
    }
}
