//! Serializing with postcard straight into a growable buffer.

use bytes::BufMut;

/// Lets postcard serialize into a buffer (`Vec<u8>`, `BytesMut`) with one
/// copy per byte string. postcard's own `to_extend` copies a value's bytes
/// one at a time (`Extend` of an iterator), a loop every log entry's
/// payload would pay on every append and every send.
pub(crate) struct BufFlavor<'a, B: BufMut>(pub &'a mut B);

impl<B: BufMut> postcard::ser_flavors::Flavor for BufFlavor<'_, B> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.put_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
