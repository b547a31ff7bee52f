-- Only the reservation audit looked lines up by product, and it now reads the store's live
-- orders in one pass. Kept, the index cost every placement an insert per line at a random
-- place (10,000 products: a different page for nearly every line), and so a page written to
-- the log per line.
DROP INDEX order_lines_by_product;
