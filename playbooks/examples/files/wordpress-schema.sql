-- A table of WordPress's shape, so that the stand-in has something to read.
CREATE TABLE wp_options (
  option_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  option_name VARCHAR(191) NOT NULL UNIQUE,
  option_value LONGTEXT NOT NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO wp_options (option_name, option_value) VALUES ('blogname', 'A stack wired by clockwork.connections');
