"""A realistic synthetic archive to try pacsindex on."""
