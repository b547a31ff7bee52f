-- Backorders are served first come, first served: filling one sums what orders that started
-- waiting earlier wait for of the same product, a range over this index.
CREATE INDEX backorders_by_product ON backorders (product_id, created_at, order_id);
