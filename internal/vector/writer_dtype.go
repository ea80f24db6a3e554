package vector

// DType returns the storage type of the vectors being written (for a
// resumed build, the one it was started with).
func (w *Writer) DType() DType { return w.dtype }
