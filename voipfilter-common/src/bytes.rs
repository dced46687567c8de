//! Bounded reads: the one way classification code touches packet bytes.
//!
//! Implemented for `[u8]` here and for the XDP context in the eBPF crate. Every read is checked
//! against the end of the data and returns `None` past it, so the same code is safe on the host
//! and provable to the verifier. Callers keep offsets below a constant bound (see
//! [`crate::packet::MAX_L4_OFF`]) so that the verifier can follow them.

/// A read-only window of packet bytes with checked, unaligned loads.
pub trait Bytes {
    /// Number of bytes in the window.
    fn len(&self) -> usize;

    /// Reads a `T` (an integer or a byte array) at `off`, unaligned; `None` past the end.
    fn load<T: Copy>(&self, off: usize) -> Option<T>;

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline(always)]
    fn u8_at(&self, off: usize) -> Option<u8> {
        self.load::<u8>(off)
    }

    /// Big-endian (network order) 16-bit value at `off`.
    #[inline(always)]
    fn be16(&self, off: usize) -> Option<u16> {
        self.load::<[u8; 2]>(off).map(u16::from_be_bytes)
    }

    /// Big-endian (network order) 32-bit value at `off`.
    #[inline(always)]
    fn be32(&self, off: usize) -> Option<u32> {
        self.load::<[u8; 4]>(off).map(u32::from_be_bytes)
    }

    /// `N` bytes at `off`.
    #[inline(always)]
    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.load::<[u8; N]>(off)
    }

    /// `x`, with everything the verifier knew about it forgotten, then clamped to `max`
    /// (returns `None` above it). The identity on the host; in the kernel a round trip through
    /// a per-CPU map slot. Use it where many paths of a detector (e.g. the iterations of an
    /// attribute walk) meet before more work: without it the verifier walks that work again
    /// for every distinct value `x` can have there; with it, once for `0..=max`.
    #[inline(always)]
    fn launder(&self, x: usize, max: usize) -> Option<usize> {
        (x <= max).then_some(x)
    }
}

/// Hides an offset from the optimiser. Use it on an offset computed as `x - k` (k constant)
/// before a packet read: LLVM would otherwise fold `- k` into the packet pointer, and the
/// verifier rejects reads through a pointer with a negative constant offset even when the
/// variable part makes up for it. Costs a stack store and load in the kernel, nothing on the
/// host.
#[inline(always)]
pub fn opaque(x: usize) -> usize {
    core::hint::black_box(x)
}

/// An all-zero `T`, written with volatile 8-byte stores. LLVM merges plain zero stores (and
/// `Default` of a large struct) into a `memset` call, which in BPF becomes a call to a
/// bpf-linker subprogram: slower, and it costs stack in every frame.
///
/// # Safety
/// All-zero bytes must be a valid `T`; `T` must be 8-byte aligned with a size that is a
/// multiple of 8 (checked at compile time).
#[inline(always)]
pub unsafe fn zeroed<T>() -> T {
    const { assert!(core::mem::size_of::<T>().is_multiple_of(8) && core::mem::align_of::<T>() >= 8) };
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let p = v.as_mut_ptr().cast::<u64>();
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 8 {
        // SAFETY: within `v` (size checked above), aligned (align checked above).
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
        i += 1;
    }
    // SAFETY: every byte written; all-zero is a valid T (caller's contract).
    unsafe { v.assume_init() }
}

impl Bytes for [u8] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        let end = off.checked_add(core::mem::size_of::<T>())?;
        let bytes = self.get(off..end)?;
        // SAFETY: `bytes` holds exactly size_of::<T>() initialised bytes, and T is only ever an
        // integer or a byte array (every bit pattern valid); the read is unaligned.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
    }
}

#[cfg(test)]
mod tests {
    use super::Bytes;

    #[test]
    fn reads_are_bounded() {
        let b: &[u8] = &[1, 2, 3, 4, 5];
        assert_eq!(b.u8_at(4), Some(5));
        assert_eq!(b.u8_at(5), None);
        assert_eq!(b.be16(0), Some(0x0102));
        assert_eq!(b.be16(4), None);
        assert_eq!(b.be32(1), Some(0x0203_0405));
        assert_eq!(b.be32(2), None);
        assert_eq!(b.array::<3>(2), Some([3, 4, 5]));
        assert_eq!(b.load::<u32>(usize::MAX), None);
    }
}
