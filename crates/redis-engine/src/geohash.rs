//! Geohash math, a port of Redis 7.0's geohash.c and geohash_helper.c (same constants,
//! same floating point operations in the same order, so scores, coordinates and
//! distances come out bit for bit as redis-server computes them).

pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

const DEG_TO_RAD: f64 = 0.017453292519943295769236907684886;
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub hash: Bits,
    pub longitude: Range,
    pub latitude: Range,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Neighbors {
    pub north: Bits,
    pub east: Bits,
    pub west: Bits,
    pub south: Bits,
    pub north_east: Bits,
    pub south_east: Bits,
    pub north_west: Bits,
    pub south_west: Bits,
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = xlo as u64;
    let mut y = ylo as u64;
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

pub fn wgs84_ranges() -> (Range, Range) {
    (
        Range {
            min: LONG_MIN,
            max: LONG_MAX,
        },
        Range {
            min: LAT_MIN,
            max: LAT_MAX,
        },
    )
}

/// `geohashEncode`; None outside the supported area.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Bits> {
    if step > 32
        || step == 0
        || lat_range.max - lat_range.min == 0.0
        || long_range.max - long_range.min == 0.0
    {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Bits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    let (lo, la) = wgs84_ranges();
    encode(lo, la, longitude, latitude, step)
}

/// `geohashDecode`.
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero()
        || lat_range.max - lat_range.min == 0.0
        || long_range.max - long_range.min == 0.0
    {
        return None;
    }
    let step = hash.step;
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Some(Area {
        hash,
        latitude: Range {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + ((ilato as f64 + 1.0) * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + ((ilono as f64 + 1.0) * 1.0 / div) * long_scale,
        },
    })
}

/// `geohashDecodeAreaToLongLat`.
pub fn area_to_long_lat(area: &Area) -> (f64, f64) {
    let x = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let y = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (x, y)
}

/// Redis's `(uint64_t)score` on x86-64 (scores of non-geo members decode too).
pub fn score_to_bits(score: f64) -> u64 {
    if score < 0.0 {
        score as i64 as u64
    } else {
        score as u64
    }
}

/// `decodeGeohash(score, xy)`: a 52-bit score → (longitude, latitude).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let (lo, la) = wgs84_ranges();
    let area = decode(
        lo,
        la,
        Bits {
            bits: score_to_bits(score),
            step: STEP_MAX,
        },
    )?;
    Some(area_to_long_lat(&area))
}

/// `geohashAlign52Bits`.
pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

/// The 52-bit score GEOADD stores.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

/// `geohashNeighbors`.
pub fn neighbors(hash: &Bits) -> Neighbors {
    let mv = |dx: i8, dy: i8| {
        let mut h = *hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: mv(1, 0),
        west: mv(-1, 0),
        south: mv(0, -1),
        north: mv(0, 1),
        north_west: mv(-1, 1),
        south_west: mv(-1, -1),
        north_east: mv(1, 1),
        south_east: mv(1, -1),
    }
}

fn deg_rad(ang: f64) -> f64 {
    ang * DEG_TO_RAD
}

fn rad_deg(ang: f64) -> f64 {
    ang / DEG_TO_RAD
}

/// `geohashEstimateStepsByRadius`.
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// A search shape (GeoShape): center, unit conversion, radius or box (in the unit).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub xy: (f64, f64),
    pub conversion: f64,
    pub kind: Kind,
}

/// `geohashBoundingBox`: [min_lon, min_lat, max_lon, max_lat].
pub fn bounding_box(shape: &Shape) -> [f64; 4] {
    let (longitude, latitude) = shape.xy;
    let (h, w) = match shape.kind {
        Kind::Radius(r) => (r, r),
        Kind::Box { width, height } => (height / 2.0, width / 2.0),
    };
    let height = shape.conversion * h;
    let width = shape.conversion * w;
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let southern = latitude < 0.0;
    [
        if southern {
            longitude - long_delta_bottom
        } else {
            longitude - long_delta_top
        },
        latitude - lat_delta,
        if southern {
            longitude + long_delta_bottom
        } else {
            longitude + long_delta_top
        },
        latitude + lat_delta,
    ]
}

/// `geohashCalculateAreasByShapeWGS84`: the center box and its (useful) neighbors.
pub fn areas_by_shape(shape: &Shape) -> (Bits, Neighbors) {
    let b = bounding_box(shape);
    let (min_lon, min_lat, max_lon, max_lat) = (b[0], b[1], b[2], b[3]);
    let (longitude, latitude) = shape.xy;
    let radius_meters = match shape.kind {
        Kind::Radius(r) => r,
        Kind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let (lo, la) = wgs84_ranges();
    let enc = |steps: u8| {
        let hash = encode(lo, la, longitude, latitude, steps).unwrap_or(Bits {
            bits: 0,
            step: steps,
        });
        let n = neighbors(&hash);
        let area = decode(lo, la, hash).unwrap_or_default();
        (hash, n, area)
    };
    let (mut hash, mut nb, mut area) = enc(steps);
    let mut decrease = false;
    {
        let d = |h: Bits| decode(lo, la, h).unwrap_or_default();
        let (north, south, east, west) = (d(nb.north), d(nb.south), d(nb.east), d(nb.west));
        if north.latitude.max < max_lat {
            decrease = true;
        }
        if south.latitude.min > min_lat {
            decrease = true;
        }
        if east.longitude.max < max_lon {
            decrease = true;
        }
        if west.longitude.min > min_lon {
            decrease = true;
        }
    }
    if steps > 1 && decrease {
        steps -= 1;
        (hash, nb, area) = enc(steps);
    }
    if steps >= 2 {
        let z = Bits::default();
        if area.latitude.min < min_lat {
            nb.south = z;
            nb.south_west = z;
            nb.south_east = z;
        }
        if area.latitude.max > max_lat {
            nb.north = z;
            nb.north_east = z;
            nb.north_west = z;
        }
        if area.longitude.min < min_lon {
            nb.west = z;
            nb.south_west = z;
            nb.north_west = z;
        }
        if area.longitude.max > max_lon {
            nb.east = z;
            nb.south_east = z;
            nb.north_east = z;
        }
    }
    (hash, nb)
}

/// `scoresOfGeoHashBox`: [min, max) score range of a box.
pub fn score_range(hash: Bits) -> (u64, u64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits + 1,
        step: hash.step,
    });
    (min, max)
}

/// `geohashGetDistance` (Redis 7.0: plain haversine).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lat1r = deg_rad(lat1d);
    let lon1r = deg_rad(lon1d);
    let lat2r = deg_rad(lat2d);
    let lon2r = deg_rad(lon2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let v = ((lon2r - lon1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_IN_METERS * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// Whether (x2, y2) is inside the shape centered at its `xy`; the distance when it is.
pub fn within(shape: &Shape, x2: f64, y2: f64) -> Option<f64> {
    let (x1, y1) = shape.xy;
    match shape.kind {
        Kind::Radius(r) => {
            let d = distance(x1, y1, x2, y2);
            (d <= r * shape.conversion).then_some(d)
        }
        Kind::Box { width, height } => {
            let (w, h) = (width * shape.conversion, height * shape.conversion);
            let lon_distance = distance(x2, y2, x1, y2);
            let lat_distance = distance(x2, y2, x2, y1);
            if lon_distance > w / 2.0 || lat_distance > h / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

/// The standard 11-character geohash string GEOHASH returns.
pub fn geohash_string(score: f64) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (x, y) = decode_score(score)?;
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        x,
        y,
        26,
    )
    .unwrap_or_default();
    let mut s = String::with_capacity(11);
    for i in 0..11 {
        let idx = if i == 10 {
            0
        } else {
            ((hash.bits >> (52 - ((i + 1) * 5))) & 0x1f) as usize
        };
        s.push(ALPHABET[idx] as char);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_and_catania_like_redis() {
        // Values from the GEOADD/GEOPOS/GEODIST/GEOHASH documentation examples.
        let p = score_of(13.361389, 38.115556).unwrap_or(0);
        let c = score_of(15.087269, 37.502669).unwrap_or(0);
        assert_eq!(p, 3479099956230698);
        assert_eq!(c, 3479447370796909);
        let (x, y) = decode_score(p as f64).unwrap_or_default();
        assert_eq!(format!("{x:.17}"), "13.36138933897018433");
        assert_eq!(format!("{y:.17}"), "38.11555639549629859");
        let (x2, y2) = decode_score(c as f64).unwrap_or_default();
        assert_eq!(format!("{:.4}", distance(x, y, x2, y2)), "166274.1516");
        assert_eq!(geohash_string(p as f64).as_deref(), Some("sqc8b49rny0"));
        assert_eq!(geohash_string(c as f64).as_deref(), Some("sqdtr74hyu0"));
    }

    #[test]
    fn interleave_round_trip() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 2),
            (0xFFFF_FFFF, 0),
            (0x1234_5678, 0x9ABC_DEF0),
        ] {
            let i = interleave64(a, b);
            let d = deinterleave64(i);
            assert_eq!(d as u32, a);
            assert_eq!((d >> 32) as u32, b);
        }
    }

    #[test]
    fn steps_and_neighbors() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1000.0, 0.0), 14);
        assert_eq!(estimate_steps_by_radius(1000.0, 70.0), 13);
        assert_eq!(estimate_steps_by_radius(1000.0, 85.0), 12);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
        let h = Bits {
            bits: 0b1001,
            step: 2,
        };
        let n = neighbors(&h);
        // Moving east then west returns to the start.
        let mut back = n.east;
        move_x(&mut back, -1);
        assert_eq!(back, h);
        let mut back = n.north;
        move_y(&mut back, -1);
        assert_eq!(back, h);
    }

    #[test]
    fn out_of_range_is_rejected() {
        assert!(score_of(181.0, 0.0).is_none());
        assert!(score_of(0.0, 85.06).is_none());
        assert!(score_of(-180.0, -85.05112878).is_some());
    }
}
