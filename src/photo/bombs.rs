//! Decompression-bomb-like images for the photo tests and the photo benchmark (which includes
//! this file by path): tiny, valid files that decode to huge, all-zero pixel buffers, written
//! directly so that making one never holds its pixels in memory.

/// Bits, least significant first (the order of both DEFLATE and WebP lossless).
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn new() -> Bits {
        Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, written most significant bit first as DEFLATE requires.
    fn code(&mut self, code: u32, bits: u32) {
        let reversed = code.reverse_bits() >> (32 - bits);
        self.put(u64::from(reversed), bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes: one literal, then (fixed-Huffman) length-258 copies at
/// distance 1, 13 bits per 258 bytes.
fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::new();
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    let literal_zero = |b: &mut Bits| b.code(0x30, 8);
    let mut left = n;
    if left > 0 {
        literal_zero(&mut bits);
        left -= 1;
    }
    while left >= 258 {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut bits);
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    // Adler-32 of n zeros: a stays 1, b adds 1 per byte.
    let adler = ((n % 65_521) << 16) | 1;
    out.extend((adler as u32).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One PNG chunk: length, type, data, CRC.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A complete, valid RGBA PNG of `w × h` transparent black pixels, `depth` 8 or 16 bits per
/// sample (a 10000 × 10000 one is about 2.5 MB and decodes to 400 MB).
pub fn png_rgba_zeros(w: u32, h: u32, depth: u8) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // Each row: filter byte 0, then the samples.
    let row = 1 + u64::from(w) * 4 * u64::from(depth / 8);
    png_chunk(&mut out, b"IDAT", &zlib_zeros(row * u64::from(h)));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A complete, valid lossless WebP of `w × h` (at most 16384 each) identical pixels, about 30
/// bytes: every prefix code has a single symbol, so the pixels take no bits at all. `alpha`
/// sets the header's alpha hint (without it the decoder returns RGB).
pub fn webp_lossless_flat(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let mut bits = Bits::new();
    bits.put(0x2F, 8); // VP8L signature
    bits.put(u64::from(w - 1), 14);
    bits.put(u64::from(h - 1), 14);
    bits.put(u64::from(alpha), 1);
    bits.put(0, 3); // version
    bits.put(0, 1); // no transform
    bits.put(0, 1); // no colour cache
    bits.put(0, 1); // no meta prefix codes
                    // Green, red, blue, alpha, distance: "simple" codes of one symbol each.
    for symbol in [0u64, 0, 0, 255, 0] {
        bits.put(1, 1); // simple code
        bits.put(0, 1); // one symbol
        if symbol < 2 {
            bits.put(0, 1); // 1-bit symbol
            bits.put(symbol, 1);
        } else {
            bits.put(1, 1); // 8-bit symbol
            bits.put(symbol, 8);
        }
    }
    let vp8l = bits.finish();
    let pad = vp8l.len() % 2;
    let mut out = b"RIFF".to_vec();
    out.extend(((4 + 8 + vp8l.len() + pad) as u32).to_le_bytes());
    out.extend(b"WEBPVP8L");
    out.extend((vp8l.len() as u32).to_le_bytes());
    out.extend(&vp8l);
    out.extend(std::iter::repeat_n(0, pad));
    out
}
