//! RemoteFX tiles drawn straight into an RGBA image by the threads that
//! decode them (the vendored `ironrdp-session` patch,
//! `vendor/ironrdp-session/PORTCULLIS.md`), against IronRDP's own way: each
//! tile applied to the image one by one, which the session still takes for
//! an image in another pixel format. The same frames go to an RGBA image and
//! to a BGRA one; the pixels and the update rectangles must agree.

use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::ReadCursor;
use ironrdp_pdu::codecs::rfx::{EntropyAlgorithm, RfxRectangle, Tile};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::rfx::DecodingContext;
use portcullis_rfx::sample;

use super::test_streams::{frame, headers};

/// The images' size: the bottom and right tiles are cut.
const WIDTH: u16 = 250;
const HEIGHT: u16 = 180;

/// Decodes `stream` (with `destination`) into a fresh RGBA image and a fresh
/// BGRA one; both images as RGBA, and both update rectangles.
fn both_ways(
    stream: &[u8],
    destination: &InclusiveRectangle,
) -> [(Vec<u8>, InclusiveRectangle); 2] {
    [PixelFormat::RgbA32, PixelFormat::BgrA32].map(|format| {
        let mut image = DecodedImage::new(format, WIDTH, HEIGHT);
        let (_, drawn) = DecodingContext::new()
            .decode(&mut image, destination, &mut ReadCursor::new(stream))
            .expect("the frame decodes");
        let mut rgba = image.data().to_vec();
        if format == PixelFormat::BgrA32 {
            for pixel in rgba.chunks_exact_mut(4) {
                pixel.swap(0, 2);
            }
        }
        (rgba, drawn)
    })
}

#[test]
fn tiles_drawn_straight_into_the_image_are_the_pixels_ironrdp_applies_tile_by_tile() {
    // A page of text, 5×4 tiles, sent in a scrambled order at an offset,
    // over a region of two rectangles (inside the desktop, or IronRDP draws
    // nothing): the bottom tiles are cut by the desktop, the right ones lie
    // outside it, and all are cut by the region.
    let page = sample::text_page(320, 256, 3);
    let encoded = sample::encode_picture(&page, 320, 256, EntropyAlgorithm::Rlgr3);
    let mut tiles = sample::placed_tiles(&encoded);
    let order = [
        7, 19, 0, 13, 4, 11, 2, 16, 9, 18, 1, 6, 15, 3, 12, 8, 17, 5, 14, 10,
    ];
    tiles = order.iter().map(|&i| tiles[i].clone()).collect();
    let region = vec![
        RfxRectangle {
            x: 0,
            y: 0,
            width: 200,
            height: 100,
        },
        RfxRectangle {
            x: 30,
            y: 100,
            width: 200,
            height: 60,
        },
    ];
    let destination = InclusiveRectangle {
        left: 9,
        top: 14,
        right: WIDTH - 1,
        bottom: HEIGHT - 1,
    };
    let stream = |tiles: Vec<Tile<'_>>| {
        let mut bytes = headers(320, 256);
        bytes.extend(frame(0, region.clone(), vec![sample::QUANT], tiles));
        bytes
    };
    let [(direct, direct_drawn), (applied, applied_drawn)] =
        both_ways(&stream(tiles.clone()), &destination);
    assert_eq!(direct_drawn, applied_drawn);
    assert!(direct == applied, "the pixels differ from IronRDP's");
    // Not vacuous: ink and paper arrived, and the corner outside the region
    // (below it at the left) stayed black.
    let at = |x: usize, y: usize| &direct[(y * usize::from(WIDTH) + x) * 4..][..4];
    assert!(direct.chunks_exact(4).any(|p| p[..3] == [0, 0, 0]));
    assert!(
        direct.chunks_exact(4).filter(|p| p[0] > 0xe0).count() > 20_000,
        "paper"
    );
    assert!(
        direct
            .chunks_exact(4)
            .filter(|p| p[0] < 0x40 && p[3] == 0xff)
            .count()
            > 1_000,
        "ink"
    );
    assert_eq!(at(5, 170), [0, 0, 0, 0], "outside the region");
    assert_eq!(at(245, 60), [0, 0, 0, 0], "outside the region");

    // Two tiles at one position (the later one on top), and tiles coded
    // alike: the session's other ways through `decode_to`, same pixels.
    let mut twice = tiles.clone();
    twice[5].x = twice[9].x;
    twice[5].y = twice[9].y;
    let [(direct, _), (applied, _)] = both_ways(&stream(twice), &destination);
    assert!(direct == applied, "two tiles at one position");
    let alike: Vec<_> = tiles
        .iter()
        .enumerate()
        .map(|(i, tile)| Tile {
            y_data: tiles[i % 3].y_data,
            cb_data: tiles[i % 3].cb_data,
            cr_data: tiles[i % 3].cr_data,
            ..tile.clone()
        })
        .collect();
    let [(direct, _), (applied, _)] = both_ways(&stream(alike), &destination);
    assert!(direct == applied, "tiles coded alike");
}
