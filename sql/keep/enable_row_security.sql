-- Row-level security on a replacement, set in the build once it is filled: until the swap
-- creates the policies again, nobody but its owner sees a row of it.
ALTER TABLE {view} ENABLE ROW LEVEL SECURITY
