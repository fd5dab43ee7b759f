-- The size of a depot's container (kg), which turns a bin's fill ratio into tonnes for the
-- collection plan. From the city file's fleet.container_t (docs/collection-planning.md).
ALTER TABLE collection_params ADD COLUMN container_kg integer NOT NULL DEFAULT 8000 CHECK (container_kg > 0);
ALTER TABLE collection_params ALTER COLUMN container_kg DROP DEFAULT;
